"""Training: camera-frame targets, every stage's loss going down on real clips, resume, LR schedule, DDP."""
from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.clips import TwoPersonClipDataset
from socialmirror.data.formats.interchange import TwoPersonSequence, write_npz
from socialmirror.body.motion import motion_to_joints
from socialmirror.models.bundle import ModelBundle, load_bundle
from socialmirror.training import STAGES
from socialmirror.training.targets import MotionTargetDataset, sequence_body_params
from socialmirror.training.trainer import (
    Runtime,
    StepBatchSampler,
    TrainConfig,
    TrainingData,
    build_stage,
    checkpoint_path,
    collate,
    load_run_config,
    make_scheduler,
    train_stage,
)

TINY = [f"model.{part}.{key}={value}" for part in ("initial", "geometry", "infiller", "refiner")
        for key, value in (("dim", 32), ("depth", 1))] + ["train.stats_clips=16", "train.lr=1e-3"]


def known_sequence(body, frames: int = 24) -> TwoPersonSequence:
    """Two persons with known anny parameters (smooth random joint rotations, yaw, walking apart)."""
    g = torch.Generator().manual_seed(3)
    t = torch.linspace(0, 1, frames)[:, None, None, None]
    axis = torch.randn(1, 2, 24, 3, generator=g) * 0.3
    aa = axis * torch.sin(2 * np.pi * t)
    aa[:, :, 0] = torch.tensor([0.0, 1.0, 0.0]) * (torch.tensor([0.3, 3.0]) + 0.5 * t[:, :, 0, 0])[..., None]
    from socialmirror.geometry.rotations import axis_angle_to_matrix
    rot = axis_angle_to_matrix(aa)
    shape = torch.tensor([[0.2, 0.5, 0.4, 0.6, 0.7, 0.5], [0.9, 0.6, 0.5, 0.4, 0.3, 0.5]])
    transl = torch.stack([torch.tensor([-0.5, 0.95, 0.0]).expand(frames, 3),
                          torch.tensor([0.5, 0.9, 0.1]) + torch.linspace(0, 0.3, frames)[:, None] * torch.tensor([1.0, 0, 0])], 1)
    joints = body.joints(rot, shape, transl)
    params = {"body": body.name, "rotmats": rot.tolist(), "shape": shape.tolist(), "transl": transl.tolist()}
    return TwoPersonSequence(joints3d=joints.numpy(), joint_names=SMPL24_NAMES, fps=30.0, up=np.array([0, 1.0, 0]),
                             text=("a person waves at others.", "a person walks past others."), action="wave",
                             meta={"body_params": params})


def test_targets_round_trip_to_camera_frame_joints(anny_body):
    seq = known_sequence(anny_body)
    params = sequence_body_params(seq, anny_body)
    assert params.method == "sequence"
    bundle = ModelBundle()
    dataset = MotionTargetDataset(TwoPersonClipDataset([([seq], 1.0)], seed=0, epoch_size=6), [[params]],
                                  bundle.representation)
    batch = collate([dataset[i] for i in range(6)])
    assert batch["swapped"].any() and not batch["swapped"].all()  # both person orders are covered
    joints = motion_to_joints(batch["x0"], batch["boxes_target"], batch["intrinsics"], anny_body)
    assert float((joints - batch["joints_cam"]).norm(dim=-1).max()) < 1e-4  # the observation's ground truth
    assert float((batch["joints_target"] - batch["joints_cam"]).norm(dim=-1).max()) < 1e-4


def test_initial_losses_vanish_at_the_target(anny_body):
    seq = known_sequence(anny_body)
    bundle = ModelBundle()
    from socialmirror.data.observation import ObservationConfig, ObservationModel
    clips = TwoPersonClipDataset([([seq], 1.0)], seed=1, epoch_size=4,
                                 observation_model=ObservationModel(ObservationConfig.clean()))
    dataset = MotionTargetDataset(clips, [[sequence_body_params(seq, anny_body)]], bundle.representation)
    batch = collate([dataset[i] for i in range(4)])
    stage = build_stage("initial", bundle, anny_body, TrainConfig(), fresh=True)
    terms = stage.losses(batch["x0"], batch)
    assert all(float(terms[k]) < 1e-6 for k in ("rotation", "joints", "translation", "reprojection", "shape", "camera")), terms
    shifted = stage.losses(batch["x0"] + 0.05, batch)
    assert all(float(shifted[k]) > 1e-3 for k in ("rotation", "joints", "translation", "reprojection", "shape", "camera"))


def test_relative_placement_term_scores_the_pair_not_its_common_offset():
    """The refiner's relative term: the error of person 2's pelvis seen from person 1's, on frames where both
    count. Moving both people together costs nothing; moving one by (0.1, 0, 0.2) m costs sqrt(0.05) m."""
    from socialmirror.training.stages import Stage
    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 2, 5, 24, 3, generator=g)
    weight = torch.ones(3, 2, 5)
    batch = {"joints_target": target}
    assert float(Stage.relative_term(target + torch.tensor([0.3, -0.2, 1.0]), batch, weight)) < 1e-6
    moved = target.clone()
    moved[:, 1] += torch.tensor([0.1, 0.0, 0.2])
    assert float(Stage.relative_term(moved, batch, weight)) == pytest.approx(0.05 ** 0.5, rel=1e-5)
    weight[:, 0, :2] = 0  # frames where person 1 is not seen are not scored
    far = target.clone()
    far[:, 1, :2] += 5.0
    assert float(Stage.relative_term(far, batch, weight)) < 1e-6


def test_ik_targets_are_cached(anny_body, tmp_path, monkeypatch):
    monkeypatch.setenv("SOCIALMIRROR_CACHE", str(tmp_path))
    seq = known_sequence(anny_body, frames=8)
    seq = dataclasses.replace(seq, meta={})  # joints only: fitted
    from socialmirror.body.ik import IKConfig
    first = sequence_body_params(seq, anny_body, ik=IKConfig(iterations=30))
    assert first.method == "ik" and len(list((tmp_path / "targets").glob("*.npz"))) == 1
    again = sequence_body_params(seq, anny_body, ik=IKConfig(iterations=30))
    assert np.array_equal(first.rotmats, again.rotmats)


@pytest.fixture(scope="module")
def cmu_with_text(tmp_path_factory):
    """The real CMU handshake pair (subjects 18/19) with its trial's description as the two sentences."""
    from tests.conftest import SHARED_DATA
    folder = SHARED_DATA / "cmu_18_19"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    from socialmirror.data.datasets import load_data_spec
    seq = load_data_spec(f"cmu:{folder}")[0]
    seq = dataclasses.replace(seq, action="handshake", text=(
        "a person walks up to others and shakes their right hand.",
        "a person walks toward others and shakes hands with them."))
    out = tmp_path_factory.mktemp("cmu_text")
    write_npz(seq, out / "cmu_18_19.npz")
    return f"npz:{out}"


@pytest.fixture(scope="module")
def training_data(cmu_with_text, anny_body):
    return TrainingData.load(cmu_with_text, anny_body, Runtime(), report=lambda _: None)


def held_out_loss(stage: str, bundle, body, cfg: TrainConfig, batch) -> float:
    module = build_stage(stage, bundle, body, cfg, fresh=False).eval()
    torch.manual_seed(123)  # the same timesteps and noise before and after training
    with torch.no_grad():
        return float(module(batch)["loss"])


@pytest.mark.slow
def test_every_stage_lowers_its_loss(training_data, anny_body, tmp_path):
    run = load_run_config(None, TINY)
    bundle = ModelBundle(run.model)
    out = tmp_path / "bundle.pt"
    held_out = None
    for stage in STAGES:
        kwargs = dict(steps=20, out=out, runtime=Runtime(), batch_size=4, seed=0, report=lambda _: None)
        if held_out is None:  # statistics come with the first stage; train one step to have them
            train_stage(stage, training_data, bundle, anny_body, run, **{**kwargs, "steps": 1})
            held_out = collate([training_data.dataset(bundle, seed=999, epoch_size=8)[i] for i in range(8)])
        if stage == "text":
            bundle.infiller.reset_controlnet()
        before = held_out_loss(stage, bundle, anny_body, run.train, held_out)
        result = train_stage(stage, training_data, bundle, anny_body, run, **kwargs)
        after = held_out_loss(stage, bundle, anny_body, run.train, held_out)
        assert np.isfinite(result.loss_end) and result.seconds_per_step > 0
        assert after < before, f"{stage}: held-out loss {before:.4f} -> {after:.4f}"
    saved = load_bundle(out)
    assert set(saved.metadata["stages"]) == set(STAGES)
    assert saved.metadata["statistics"]["sigma_from"] == "initial"


def test_each_member_of_an_initial_ensemble_learns_on_its_own_loss(training_data, anny_body):
    # A loss on the members' mean would train one larger network; each member's gradient must be its own
    # loss's (over the number of members), whatever the other member predicts.
    run = load_run_config(None, TINY + ["model.initial.members=2"])
    torch.manual_seed(0)
    bundle = ModelBundle(run.model)
    batch = collate([training_data.dataset(bundle, seed=5, epoch_size=4)[i] for i in range(4)])
    bundle.initial.set_output_statistics(batch["x0"].reshape(-1, bundle.motion_dim))
    stage = build_stage("initial", bundle, anny_body, run.train, fresh=True)
    first, second = bundle.initial.members
    for member in (first, second):
        torch.nn.init.normal_(member.head.weight, std=0.05)
    stage(batch)["loss"].backward()
    together = [p.grad.clone() for p in first.parameters()]
    own = [stage.losses(m(stage.features(batch), batch["detected"]), batch) for m in (first, second)]
    mean = (own[0]["loss"] + own[1]["loss"]).detach() / 2
    assert float(stage(batch)["loss"].detach()) == pytest.approx(float(mean), rel=1e-5)
    first.zero_grad()
    (own[0]["loss"] / 2).backward()
    for a, b in zip(together, first.parameters()):
        torch.testing.assert_close(a, b.grad)


def test_resume_continues_from_the_checkpoint(training_data, anny_body, tmp_path, monkeypatch):
    run = load_run_config(None, TINY + ["train.checkpoint_every=4"])
    common = dict(steps=8, runtime=Runtime(), batch_size=4, report=lambda _: None)
    reference = ModelBundle(run.model)
    torch.manual_seed(0)
    train_stage("initial", training_data, reference, anny_body, run, out=tmp_path / "a.pt", **common)

    import socialmirror.training.trainer as trainer
    save = trainer.save_checkpoint

    def save_then_stop(path, bundle, optimizer, scheduler, step, *args):
        save(path, bundle, optimizer, scheduler, step, *args)
        if step == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_stop)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train_stage("initial", training_data, ModelBundle(run.model), anny_body, run, out=tmp_path / "b.pt", **common)
    monkeypatch.setattr(trainer, "save_checkpoint", save)
    assert torch.load(checkpoint_path(tmp_path / "b.pt", "initial"), weights_only=False)["step"] == 4
    messages = []
    resumed = ModelBundle(run.model)
    train_stage("initial", training_data, resumed, anny_body, run, out=tmp_path / "b.pt", resume=True,
                **{**common, "report": messages.append})
    assert any("resuming at step 4 of 8" in m for m in messages)
    assert len(resumed.metadata["loss_history"]["initial"]) == 8
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_lr_schedule_restarts_like_cyclic_lr_with_restarts():
    cfg = TrainConfig()
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = make_scheduler(opt, cfg)
    lrs = {}
    for epoch in (5.0, 9.99, 10.0, 20.0, 30.0, 50.0):
        sched.step(epoch)
        lrs[epoch] = opt.param_groups[0]["lr"]
    assert lrs[5.0] == pytest.approx(cfg.lr_min + (cfg.lr - cfg.lr_min) / 2)  # half way down the first cosine
    assert lrs[9.99] < 1e-5 and lrs[10.0] == pytest.approx(cfg.lr) and lrs[30.0] == pytest.approx(cfg.lr)
    assert lrs[20.0] == pytest.approx(lrs[50.0])  # half way through periods of 20 and 40 epochs


def test_step_batches_are_disjoint_across_ranks_and_resumable():
    ranks = [list(StepBatchSampler(0, 5, 3, rank=r, world_size=2)) for r in (0, 1)]
    flat = [i for r in ranks for b in r for i in b]
    assert len(flat) == len(set(flat)) == 30
    assert list(StepBatchSampler(2, 5, 3, rank=1, world_size=2)) == ranks[1][2:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, spec: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from socialmirror.body import build_body_model
    from socialmirror.training.trainer import init_runtime
    runtime = init_runtime()
    body = build_body_model("anny")
    run = load_run_config(None, TINY)
    data = TrainingData.load(spec, body, runtime, report=lambda _: None)
    torch.manual_seed(rank)  # different initialisations: DDP must start every rank from rank 0's weights
    bundle = ModelBundle(run.model)
    for stage in ("initial", "infiller"):  # the infiller holds an untrained ControlNet: DDP must not wait on it
        train_stage(stage, data, bundle, body, run, steps=3, out=Path(out) / "bundle.pt", runtime=runtime,
                    batch_size=2, report=lambda _: None)
    torch.save(bundle.state_dict(), Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ddp_gloo_ranks_agree(cmu_with_text, training_data, tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), cmu_with_text, str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    trained = [k for k in a if k.startswith(("initial.", "infiller.denoiser."))]
    assert trained and all(torch.equal(a[k], b[k]) for k in trained)
    assert (tmp_path / "bundle.pt").is_file()
    assert load_bundle(tmp_path / "bundle.pt").metadata["stages"]["infiller"]["world_size"] == 2


def test_time_budget_and_recipe_shares(training_data, anny_body, tmp_path):
    from socialmirror.training.recipe import STAGE_SHARES, stage_budgets
    budgets = stage_budgets(minutes=30)
    assert sum(seconds for _, seconds in budgets.values()) == pytest.approx(1800)
    assert set(budgets) == set(STAGE_SHARES) == set(STAGES)
    assert stage_budgets(steps=1000)["infiller"] == (263, None)
    assert stage_budgets(steps=1000)["geometry_linear"] == (60, None)
    assert list(STAGE_SHARES)[:3] == ["initial", "geometry", "geometry_linear"]  # the recipe's order
    run = load_run_config(None, TINY)
    result = train_stage("initial", training_data, ModelBundle(run.model), anny_body, run, None, tmp_path / "b.pt",
                         Runtime(), batch_size=2, seconds=1.0, report=lambda _: None)
    assert result.steps >= 10


def test_a_run_takes_its_steps_from_another_bundle(cmu_with_text, training_data, anny_body, tmp_path):
    # Two runs compared with each other train equally long, whatever the machine's pace (--steps-like).
    from socialmirror.models.bundle import CheckpointError
    from socialmirror.training.trainer import recorded_steps, train_main
    run = load_run_config(None, TINY)
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    train_stage("initial", training_data, ModelBundle(run.model), anny_body, run, steps=3, out=first,
                runtime=Runtime(), batch_size=2, report=lambda _: None)
    assert recorded_steps(first) == {"initial": 3}
    assert train_main("initial", cmu_with_text, None, second, batch_size=2, overrides=TINY, seed=1,
                      report=lambda _: None, steps_like=first) == 0
    assert int(load_bundle(second).metadata["stages"]["initial"]["steps"]) == 3
    with pytest.raises(CheckpointError, match="no geometry stage"):
        train_main("geometry", cmu_with_text, None, second, batch_size=2, overrides=TINY, report=lambda _: None,
                   steps_like=first)


def test_train_arguments():
    import argparse
    from socialmirror.training.cli import add_train_arguments
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["geometry", "--data", "synth:4", "--steps", "20", "--out", "w.pt",
                              "--set", "model.geometry.embedding=linear", "--resume"])
    assert (args.stage, args.steps, args.out, args.resume) == ("geometry", 20, "w.pt", True)
    assert args.overrides == ["model.geometry.embedding=linear"]
    with pytest.raises(SystemExit):
        parser.parse_args(["all", "--data", "synth:4", "--steps", "5", "--minutes", "2"])
    args = parser.parse_args(["geometry_linear", "--data", "synth:4", "--minutes", "3", "--out", "w.pt"])
    assert (args.stage, args.minutes, args.steps) == ("geometry_linear", 3.0, None)
    args = parser.parse_args(["all", "--data", "synth:4", "--steps-like", "a.pt", "--out", "w.pt"])
    assert (args.steps_like, args.steps, args.minutes) == ("a.pt", None, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["all", "--data", "synth:4", "--steps", "5", "--steps-like", "a.pt", "--out", "w.pt"])


def test_geometry_linear_continues_an_older_bundle(cmu_with_text, training_data, anny_body, tmp_path):
    """`socialmirror train geometry_linear --out OLD.pt`: continues the bundle at OUT, which has no slot for
    the Linear-embedding Geometry Optimizer yet, adds it and trains only it."""
    from socialmirror.training.trainer import DEFAULT_BATCH, train_main
    run = load_run_config(None, TINY)
    assert run.model.geometry_linear and DEFAULT_BATCH["geometry_linear"] == DEFAULT_BATCH["geometry"] == 64
    old_config = dataclasses.replace(run.model, geometry_linear=False)
    assert ModelBundle(old_config).geometry_linear is None
    out = tmp_path / "bundle.pt"
    train_stage("initial", training_data, ModelBundle(old_config), anny_body, run, steps=2, out=out,
                runtime=Runtime(), batch_size=2, report=lambda _: None)
    before = load_bundle(out)
    assert before.geometry_linear is None
    assert train_main("geometry_linear", cmu_with_text, 3, out, batch_size=4, overrides=TINY,
                      report=lambda _: None) == 0
    after = load_bundle(out, config=run.model)
    assert after.geometry_linear is not None and after.geometry_linear.config.embedding == "linear"
    assert after.config.geometry.embedding == "stgcn"
    assert set(after.metadata["stages"]) == {"initial", "geometry_linear"}
    assert after.metadata["stages"]["geometry_linear"]["steps"] == 3
    state = after.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in before.state_dict().items())  # nothing else moved
    assert float(after.geometry_linear.head.weight.detach().abs().max()) > 0  # trained off its zero initialisation
    module = build_stage("geometry_linear", after, anny_body, run.train, fresh=False)
    assert module.name == "geometry_linear" and module.geometry is after.geometry_linear
    assert module.initial is not None  # fed by the trained initial estimator, like `geometry`
    trainable = {id(p) for p in module.trainable_parameters()}
    assert trainable == {id(p) for p in after.geometry_linear.parameters()}
