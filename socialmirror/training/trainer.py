"""The trainer: one stage of the model bundle at a time (``train_main``), resumable, data-parallel.

Optimisation (supplementary Sec. 1.1): AdamW, learning rate 1e-4, and the paper's CyclicLRWithRestarts
(restart_period 10, t_mult 2, cosine policy) as ``CosineAnnealingWarmRestarts(T_0=10, T_mult=2)`` stepped
with fractional epochs after every batch, which gives the same learning rates (docs/offline-stack.md).

What an "epoch" is. The training clips are random draws (random window, camera, detector noise and person
swap for every item; ``TwoPersonClipDataset``), so there is no natural pass over the data. An epoch is
therefore a fixed number of steps: ``steps / lr_epochs`` with ``lr_epochs = 70`` by default, so that every
run, however long, spans exactly the first three cosine cycles (10 + 20 + 40 epochs) and ends with the
learning rate at its minimum. ``train.steps_per_epoch`` fixes it instead.

Data: per step, rank r of W takes the items [(step * W + r) * B, ... + B) of a dataset whose items are pure
functions of (seed, index) (``StepBatchSampler``): ranks never share an item, and a resumed run continues
with exactly the batches it would have seen, without replaying the data. (A ``DistributedSampler`` shuffles
by epoch and would have to replay a partial epoch to resume.)

Checkpoints: every ``checkpoint_every`` steps and at the end, rank 0 writes ``OUT.train/STAGE.pt`` (full
precision weights, optimiser, scheduler, step, RNG state); ``--resume`` continues from it. At the end of a
stage the bundle is written to OUT (parameters in float16); the next stage starts from that file.

DDP: ``torchrun --nproc_per_node=N -m socialmirror train ...`` (or any launcher that sets RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT): the gloo backend on CPU. Only rank 0 writes files.
"""
from __future__ import annotations

import dataclasses
import io
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from socialmirror.body import build_body_model
from socialmirror.body.base import BodyModel
from socialmirror.config import load, to_dict
from socialmirror.data.clips import TwoPersonClipDataset
from socialmirror.data.datasets import DataSource, parse_data_spec
from socialmirror.io import atomic_write_bytes
from socialmirror.models.bundle import CheckpointError, ModelBundle, ModelBundleConfig, load_bundle, save_bundle
from socialmirror.training import STAGES
from socialmirror.training.recipe import STAGE_SHARES, stage_budgets
from socialmirror.training.stages import (
    DiffusionStage,
    GeometryStage,
    InitialStage,
    LossWeights,
    RefinerStage,
    Stage,
    batch_features,
)
from socialmirror.training.targets import MotionTargetDataset, SequenceBodyParams, prepare_body_params

# Batch sizes of the paper (64 for the Geometry Optimizer, 32 for the infiller) and 32 for the rest.
DEFAULT_BATCH = {"initial": 32, "geometry": 64, "geometry_linear": 64, "infiller": 32, "independent": 32,
                 "text": 32, "refiner": 32}
CHECKPOINT_FORMAT = "socialmirror.train-checkpoint"
# A stage that takes another stage's random seed (data draws, input noise).
SEED_OF = {"geometry_linear": "geometry"}


@dataclass
class TrainConfig:
    lr: float = 1e-4
    weight_decay: float = 1e-2
    lr_min: float = 1e-6
    restart_period: int = 10  # T_0, epochs
    restart_mult: int = 2  # T_mult
    lr_epochs: float = 70.0  # a run spans this many epochs (see the module docstring)
    steps_per_epoch: float | None = None  # fixes the epoch length instead of lr_epochs
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    log_every: int = 10
    threads: int = 1  # torch threads per process (docs/offline-stack.md: 1 holds up when cores are shared)
    workers: int = 0  # DataLoader worker processes
    stats_clips: int = 256  # clips drawn to compute the normalisation statistics and sigma
    geometry_input_noise: float = 0.05  # metres; geometry stage without a trained initial estimator
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self):
        # Checked when the config is made, so a bad value fails before data synthesis and training start.
        positive = ("lr", "lr_min", "lr_epochs", "grad_clip")
        non_negative = ("weight_decay", "geometry_input_noise")
        at_least_one = ("restart_period", "restart_mult", "checkpoint_every", "log_every", "threads", "stats_clips")
        for name in positive + non_negative:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)
                    and (value > 0 if name in positive else value >= 0)):
                raise ValueError(f"{name} must be a finite {'positive' if name in positive else 'non-negative'} "
                                 f"number, got {value!r}")
        for name in at_least_one:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, got {self.workers!r}")
        if self.steps_per_epoch is not None and not (math.isfinite(self.steps_per_epoch) and self.steps_per_epoch > 0):
            raise ValueError(f"steps_per_epoch must be positive (or null), got {self.steps_per_epoch!r}")
        if self.lr_min > self.lr:
            raise ValueError(f"lr_min ({self.lr_min}) must not exceed lr ({self.lr})")


def _trained_bundle_config() -> ModelBundleConfig:
    """Trained bundles hold the Linear-embedding Geometry Optimizer of the ablation too
    (``model.geometry_linear=false`` leaves it out of ``train all``), and read MediaPipe's 3D
    (``model.world_landmarks=false``: keypoints only, as bundles before it)."""
    return ModelBundleConfig(geometry_linear=True, world_landmarks=True)  # F_img with MediaPipe's 3D


@dataclass
class TrainRunConfig:
    model: ModelBundleConfig = field(default_factory=_trained_bundle_config)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class StageResult:
    stage: str
    steps: int
    seconds_per_step: float
    loss_start: float  # mean of the first log window
    loss_end: float  # mean of the last log window
    terms_end: dict[str, float]


# ---------------------------------------------------------------------------------------------- runtime
@dataclass
class Runtime:
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def max(self, value: float) -> float:
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())


def init_runtime() -> Runtime:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): gloo, CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Runtime()
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return Runtime(rank=dist.get_rank(), world_size=dist.get_world_size())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------- data
class StepBatchSampler(Sampler[list[int]]):
    """Batches for steps start_step .. total_steps - 1 of one rank (see the module docstring)."""

    def __init__(self, start_step: int, total_steps: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.start_step, self.total_steps = start_step, total_steps
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.total_steps):
            first = (step * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))


@dataclass
class TrainingData:
    """The sources of a data spec and every sequence's body parameters (targets)."""

    spec: str
    sources: list[DataSource]
    params: list[list[SequenceBodyParams]]

    @classmethod
    def load(cls, spec: str, body: BodyModel, runtime: Runtime, seed: int = 0,
             report: Callable[[str], None] = print) -> "TrainingData":
        sources = parse_data_spec(spec, seed=seed)
        sequences = [q for s in sources for q in s.sequences]
        t0 = time.perf_counter()
        flat = prepare_body_params(sequences, body, runtime.rank, runtime.world_size, runtime.barrier)
        for seq in sequences:
            # The parameters now live in `flat`; the copy in meta (large JSON) would be re-serialised and
            # re-validated every time a clip is cut from the sequence.
            seq.meta.pop("body_params", None)
        methods = {m: sum(p.method == m for p in flat) for m in ("sequence", "ik")}
        report(f"data {spec}: {len(sequences)} sequences, body parameters from the data {methods['sequence']}, "
               f"IK {methods['ik']} ({time.perf_counter() - t0:.1f} s)")
        params, k = [], 0
        for s in sources:
            params.append(flat[k:k + len(s.sequences)])
            k += len(s.sequences)
        return cls(spec, sources, params)

    def dataset(self, bundle: ModelBundle, seed: int, epoch_size: int) -> MotionTargetDataset:
        clips = TwoPersonClipDataset(self.sources, length=bundle.config.clip_len, seed=seed, epoch_size=epoch_size)
        return MotionTargetDataset(clips, self.params, bundle.representation)


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return torch.utils.data.default_collate(items)


# ---------------------------------------------------------------------------------------- statistics
@torch.no_grad()
def ensure_statistics(bundle: ModelBundle, data: TrainingData, stage: str, clips: int, seed: int,
                      report: Callable[[str], None] = print) -> None:
    """Motion normalisation (x_mean, x_std) and the initial estimator's output statistics, once, from the
    training targets; sigma (std of x0 - x_init in normalised units) once the initial estimator is trained,
    i.e. before the first diffusion stage. Items are fixed by the seed, so every DDP rank gets the same."""
    stats = bundle.metadata.setdefault("statistics", {})
    trained = bundle.metadata.get("stages", {})
    need_sigma = stage in ("infiller", "independent", "text", "refiner") and "initial" in trained \
        and stats.get("sigma_from") != "initial"
    if stats.get("x") and not need_sigma:
        return
    dataset = data.dataset(bundle, seed=seed + 104729, epoch_size=clips)
    batch = collate([dataset[i] for i in range(clips)])
    weight = (batch["valid"] & batch["person_observed"][:, :, None]).reshape(-1)
    x0 = batch["x0"].reshape(-1, bundle.motion_dim)[weight]
    if not stats.get("x"):
        mean, std = x0.mean(0), x0.std(0).clamp_min(1e-3)
        bundle.set_statistics(mean, std, torch.ones_like(mean))
        bundle.initial.set_output_statistics(x0)
        stats.update(x=True, x_clips=clips, sigma_from="none")
        report(f"normalisation statistics from {clips} clips ({x0.shape[0]} person-frames)")
    if need_sigma:
        features = batch_features(bundle, batch)
        bundle.initial.eval()
        x_init = bundle.initial(features, batch["detected"]).reshape(-1, bundle.motion_dim)[weight]
        sigma = ((x0 - x_init) / bundle.x_std).std(0).clamp_min(1e-3)
        bundle.set_statistics(bundle.x_mean, bundle.x_std, sigma)
        stats.update(sigma_from="initial")
        report(f"diffusion sigma from the initial estimator's error: median {sigma.median():.3f} "
               f"(normalised units)")


# ---------------------------------------------------------------------------------------------- stages
def build_stage(stage: str, bundle: ModelBundle, body: BodyModel, cfg: TrainConfig, fresh: bool) -> Stage:
    """The stage module. ``fresh``: the stage starts now (not resumed), e.g. the ControlNet is re-copied
    from the trained base before phase 2."""
    trained = bundle.metadata.get("stages", {})
    weights = cfg.weights
    if stage == "initial":
        return InitialStage(bundle, body, weights)
    if stage == "geometry":
        return GeometryStage(bundle, body, weights, use_initial="initial" in trained,
                             input_noise=cfg.geometry_input_noise)
    if stage == "geometry_linear":
        return GeometryStage(bundle, body, weights, use_initial="initial" in trained,
                             input_noise=cfg.geometry_input_noise, network=bundle.add_geometry_linear(),
                             name="geometry_linear")
    if stage == "infiller":
        bundle.infiller.freeze_base(False)
        # Phase 1 trains the base alone; the ControlNet is copied from it before phase 2. Unused trainable
        # parameters would also stall DDP's gradient reduction and be moved by weight decay.
        _set_trainable(bundle.infiller.controlnet_parameters(), False)
        return DiffusionStage(bundle, body, weights, bundle.infiller, "infiller")
    if stage == "independent":
        if bundle.independent is None:
            raise CheckpointError("this bundle has no independent baseline (model.independent_baseline=false)")
        return DiffusionStage(bundle, body, weights, bundle.independent, "independent")
    if stage == "text":
        if bundle.infiller.controlnet is None:
            raise CheckpointError("this bundle's infiller has no ControlNet (model.infiller.controlnet=false)")
        if fresh:
            bundle.infiller.reset_controlnet()
        bundle.infiller.freeze_base(True)
        _set_trainable(bundle.infiller.controlnet_parameters(), True)
        from socialmirror.semantics.text_encoder import get_text_encoder
        encoder = get_text_encoder(bundle.config.text_encoder)  # recorded in the bundle: inference reads it there
        return DiffusionStage(bundle, body, weights, bundle.infiller, "text", text_encoder=encoder.encode)
    if stage == "refiner":
        return RefinerStage(bundle, body, weights)
    raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")


def _set_trainable(parameters: Iterator[nn.Parameter], trainable: bool) -> None:
    for p in parameters:
        p.requires_grad_(trainable)


def checkpoint_path(out: str | Path, stage: str) -> Path:
    return Path(f"{out}.train") / f"{stage}.pt"


def save_checkpoint(path: Path, bundle: ModelBundle, optimizer, scheduler, step: int, total_steps: int,
                    run: TrainRunConfig, stage: str) -> None:
    """The resumable state of a stage after ``step`` steps (full-precision weights, optimiser, scheduler, RNG)
    written atomically to ``path`` (``checkpoint_path``); ``--resume`` continues from it."""
    payload = {"format": CHECKPOINT_FORMAT, "stage": stage, "step": step, "total_steps": total_steps,
               "config": to_dict(run), "bundle_config": to_dict(bundle.config), "metadata": bundle.metadata,
               "bundle": bundle.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_checkpoint(path: Path, stage: str) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unreadable file: a one-line message for the user
        raise CheckpointError(f"cannot resume from {path}: {str(exc).splitlines()[0] if str(exc) else exc}") \
            from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or payload.get("stage") != stage:
        raise CheckpointError(f"{path} is not a training checkpoint of stage {stage}")
    return payload


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=cfg.restart_period,
                                                                T_mult=cfg.restart_mult, eta_min=cfg.lr_min)


def load_run_config(config_path: str | Path | None, overrides: Sequence[str]) -> TrainRunConfig:
    return load(TrainRunConfig, config_path, list(overrides))


def _model_overrides(overrides: Sequence[str]) -> list[str]:
    return [o for o in overrides if o.startswith("model.")]


def open_bundle(out: Path, run: TrainRunConfig, overrides: Sequence[str]) -> ModelBundle:
    """The bundle a stage continues: OUT when an earlier stage wrote it (its config must agree with any model
    override given), else a new one from the config."""
    if out.is_file():
        return load_bundle(out, config=run.model if _model_overrides(overrides) else None)
    return ModelBundle(run.model)


# -------------------------------------------------------------------------------------------- training
def train_stage(stage: str, data: TrainingData, bundle: ModelBundle, body: BodyModel, run: TrainRunConfig,
                steps: int | None, out: Path, runtime: Runtime, resume: bool = False,
                batch_size: int | None = None, seed: int = 0, seconds: float | None = None,
                report: Callable[[str], None] = print) -> StageResult:
    """Train one stage of ``bundle`` in place for ``steps`` steps (or as many as fit in ``seconds``, timed on
    three probe steps); rank 0 writes the checkpoint and the bundle to ``out``. ``report`` prints progress
    messages (pass a silent one on ranks other than 0)."""
    cfg = run.train
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    batch_size = batch_size or DEFAULT_BATCH[stage]
    # geometry_linear draws the very clips (and input noise) of geometry: the ablation differs in the embedding.
    stage_seed = seed + 7919 * (STAGES.index(SEED_OF.get(stage, stage)) + 1)
    ckpt_path = checkpoint_path(out, stage)
    payload = _restore_bundle(stage, bundle, stage_seed, ckpt_path, resume, report)
    if payload is not None:
        steps = payload["total_steps"]
    seed_everything(stage_seed + 1000003 * runtime.rank)
    ensure_statistics(bundle, data, stage, cfg.stats_clips, seed, report)
    module = build_stage(stage, bundle, body, cfg, fresh=payload is None)
    module.train()
    params = list(module.trainable_parameters())
    model: nn.Module = module
    if runtime.distributed:
        model = nn.parallel.DistributedDataParallel(module, broadcast_buffers=False)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(optimizer, cfg)

    def batches(start: int, total: int, dataset) -> Iterator[dict[str, Any]]:
        sampler = StepBatchSampler(start, total, batch_size, runtime.rank, runtime.world_size)
        return iter(DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.workers, collate_fn=collate))

    if steps is None:
        if seconds is None:
            raise ValueError("give the number of steps or a time budget")
        steps = _steps_for_budget(model, params, data, bundle, batch_size, stage_seed, seconds, runtime, batches)
        report(f"{stage}: {steps} steps fit in {seconds / 60:.1f} min")
    start = 0
    if payload is not None:
        start = _restore_optimizer(payload, optimizer, scheduler, stage_seed, runtime)
        report(f"{stage}: resuming at step {start} of {steps}")
    dataset = data.dataset(bundle, seed=stage_seed, epoch_size=steps * batch_size * runtime.world_size)
    loop = _StageLoop(stage, model, params, optimizer, scheduler, cfg, runtime)
    history, last_terms, seconds_per_step = loop.run(
        batches(start, steps, dataset), start, steps, bundle, lambda step: save_checkpoint(
            ckpt_path, bundle, optimizer, scheduler, step, steps, run, stage))
    return _finish_stage(stage, steps, batch_size, history, last_terms, seconds_per_step, bundle, data, run, out,
                         runtime, report)


def _restore_bundle(stage: str, bundle: ModelBundle, stage_seed: int, ckpt_path: Path, resume: bool,
                    report: Callable[[str], None]) -> dict | None:
    """The stage's checkpoint when resuming (its weights loaded into ``bundle``), else None. A bundle
    written before the Linear-embedding slot existed gets it here, with initial weights fixed by the seed."""
    if stage == "geometry_linear" and bundle.geometry_linear is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stage_seed)
            bundle.add_geometry_linear()
    payload = _load_checkpoint(ckpt_path, stage) if resume and ckpt_path.is_file() else None
    if resume and payload is None:
        report(f"{stage}: no checkpoint at {ckpt_path}; starting the stage from the beginning")
    if payload is not None:
        if any(k.startswith("geometry_linear.") for k in payload["bundle"]):
            bundle.add_geometry_linear()  # the run that wrote the checkpoint held the slot
        bundle.load_state_dict(payload["bundle"])
        bundle.metadata = payload["metadata"]
    return payload


def _restore_optimizer(payload: dict, optimizer, scheduler, stage_seed: int, runtime: Runtime) -> int:
    """Optimiser, scheduler and random state from the checkpoint; returns the step to resume at."""
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    start = int(payload["step"])
    if runtime.distributed:  # the checkpoint holds rank 0's generator: give every rank its own stream
        seed_everything(stage_seed + 1000003 * runtime.rank + 7 * start)
    else:
        torch.set_rng_state(payload["torch_rng"])
    return start


class _StageLoop:
    """The optimisation steps of one stage: AdamW with gradient clipping and the scheduler stepped per epoch
    fraction, a progress bar, and a checkpoint every ``checkpoint_every`` steps and at the end (rank 0)."""

    def __init__(self, stage: str, model: nn.Module, params: list, optimizer, scheduler, cfg, runtime: Runtime):
        self.stage, self.model, self.params = stage, model, params
        self.optimizer, self.scheduler, self.cfg, self.runtime = optimizer, scheduler, cfg, runtime

    def run(self, batches: Iterator[dict[str, Any]], start: int, steps: int, bundle: ModelBundle,
            checkpoint: Callable[[int], None]) -> tuple[list[float], dict[str, float], float]:
        """Steps ``start`` .. ``steps``; returns the loss history (earlier steps' from the bundle's metadata),
        the last step's loss terms and the seconds a step took."""
        cfg, stage = self.cfg, self.stage
        steps_per_epoch = cfg.steps_per_epoch or steps / cfg.lr_epochs
        history = [float(x) for x in bundle.metadata.get("loss_history", {}).get(stage, [])][:start]
        last_terms: dict[str, float] = {}
        progress = _progress(self.runtime, start, steps, stage)
        t_start, timed_steps = time.perf_counter(), 0
        for step, batch in zip(range(start, steps), batches):
            terms = self.model(batch)
            self.optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            self.optimizer.step()
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used (the scheduler sets the next one)
            self.scheduler.step((step + 1) / steps_per_epoch)
            history.append(float(terms["loss"].detach()))
            last_terms = {k: float(v.detach()) for k, v in terms.items()}
            timed_steps += 1
            if progress is not None:
                progress.update(1)
                if (step + 1) % cfg.log_every == 0:
                    progress.set_postfix(loss=f"{np.mean(history[-cfg.log_every:]):.4f}", lr=f"{lr:.2e}")
            if self.runtime.is_main and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == steps):
                bundle.metadata.setdefault("loss_history", {})[stage] = [round(v, 6) for v in history]
                checkpoint(step + 1)
        if progress is not None:
            progress.close()
        return history, last_terms, (time.perf_counter() - t_start) / max(1, timed_steps)


def _finish_stage(stage: str, steps: int, batch_size: int, history: list[float], last_terms: dict[str, float],
                  seconds_per_step: float, bundle: ModelBundle, data: TrainingData, run: TrainRunConfig, out: Path,
                  runtime: Runtime, report: Callable[[str], None]) -> StageResult:
    """The stage's record in the bundle's metadata; rank 0 writes the bundle."""
    window = max(1, min(run.train.log_every, len(history) // 2 or 1))
    result = StageResult(stage, steps, seconds_per_step,
                         float(np.mean(history[:window])) if history else math.nan,
                         float(np.mean(history[-window:])) if history else math.nan, last_terms)
    bundle.metadata.setdefault("stages", {})[stage] = {
        "steps": steps, "batch_size": batch_size, "world_size": runtime.world_size, "data": data.spec,
        "seconds_per_step": round(seconds_per_step, 4), "loss_start": round(result.loss_start, 6),
        "loss_end": round(result.loss_end, 6), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    bundle.metadata.setdefault("loss_history", {})[stage] = [round(v, 6) for v in history]
    bundle.metadata["train_config"] = to_dict(run.train)
    if runtime.is_main:
        save_bundle(bundle, out)
        report(f"{stage}: {steps} steps, {seconds_per_step:.3f} s/step, loss {result.loss_start:.4f} -> "
               f"{result.loss_end:.4f}; bundle written to {out}")
    runtime.barrier()
    return result


def _quiet(_: str) -> None:
    return None


def _progress(runtime: Runtime, start: int, total: int, stage: str):
    if not runtime.is_main:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=start, desc=stage, unit="step", dynamic_ncols=True, mininterval=1.0)


def _steps_for_budget(model, params, data, bundle, batch_size, seed, seconds, runtime, batches) -> int:
    """Steps that fit in ``seconds``: probe steps (making the batch, forward, backward; no update), timed
    after the first (which pays one-off costs), at the slowest rank's pace."""
    probe = data.dataset(bundle, seed=seed + 17, epoch_size=4 * batch_size * runtime.world_size)
    t0 = None
    for batch in batches(0, 4, probe):
        model(batch)["loss"].backward()
        for p in params:
            p.grad = None
        t0 = t0 or time.perf_counter()
    per_step = runtime.max((time.perf_counter() - t0) / 3 * 1.05)  # + the optimiser step
    return max(10, int(seconds / per_step))


def train_recipe(data: TrainingData, bundle: ModelBundle, body: BodyModel, run: TrainRunConfig, out: Path,
                 runtime: Runtime, minutes: float | None = None, steps: int | None = None, resume: bool = False,
                 seed: int = 0, report: Callable[[str], None] = print,
                 steps_like: dict[str, int] | None = None) -> None:
    """Every stage of the recipe (``socialmirror.training.recipe``) in order, each on its share of the budget
    (or, with ``steps_like``, each stage's steps from there: ``recorded_steps``); the optional slots
    (``independent``, ``geometry_linear``) only when the bundle or the config has them. With ``resume``,
    stages the bundle records as finished are skipped."""
    stages = recipe_stages(bundle, run)
    budgets = ({s: (planned_steps(steps_like, s), None) for s in stages} if steps_like is not None
               else stage_budgets(minutes, steps, stages))
    for stage, (stage_steps, seconds) in budgets.items():
        if resume and stage in bundle.metadata.get("stages", {}):
            report(f"{stage}: already trained; skipped")
            continue
        train_stage(stage, data, bundle, body, run, stage_steps, out, runtime, resume=resume, seed=seed,
                    seconds=seconds, report=report)


def recorded_steps(path: str | Path) -> dict[str, int]:
    """Each stage's step count as the trained bundle at ``path`` records it (``train --steps-like``). Why: a
    time budget sets a stage's steps from the pace of a few probe steps, so two runs on one budget differ in
    their steps when the machine is busier for one of them (measured: two runs of the recipe on 25 minutes
    gave the initial estimator 1029 and 675 steps); runs compared with each other must train equally long."""
    stages = load_bundle(path).metadata.get("stages", {})
    return {stage: int(record["steps"]) for stage, record in stages.items() if "steps" in record}


def planned_steps(steps_like: dict[str, int], stage: str) -> int:
    if stage not in steps_like:
        raise CheckpointError(f"the bundle given to --steps-like records no {stage} stage (it has "
                              f"{', '.join(steps_like) or 'none'})")
    return steps_like[stage]


def recipe_stages(bundle: ModelBundle, run: TrainRunConfig) -> tuple[str, ...]:
    """The recipe's stages for this bundle, in order: the optional slots (``independent``, ``geometry_linear``)
    only when the bundle or the config has them."""
    optional = {"independent": bundle.independent is not None,
                "geometry_linear": run.model.geometry_linear or bundle.geometry_linear is not None}
    return tuple(s for s in STAGE_SHARES if optional.get(s, True))


def recipe_finished(out: str | Path, overrides: Sequence[str] = (), config_path: str | Path | None = None) -> bool:
    """Whether the bundle at ``out`` records every stage of the recipe as trained (False when there is none)."""
    if not Path(out).is_file():
        return False
    run = load_run_config(config_path, overrides)
    bundle = open_bundle(Path(out), run, overrides)
    return set(recipe_stages(bundle, run)) <= set(bundle.metadata.get("stages", {}))


def train_main(stage: str, data: str, steps: int | None, out: str | Path, resume: bool = False,
               batch_size: int | None = None, seed: int = 0, overrides: Sequence[str] = (),
               config_path: str | Path | None = None, threads: int | None = None,
               minutes: float | None = None, report: Callable[[str], None] = print,
               steps_like: str | Path | None = None) -> int:
    """Train ``stage`` (one of STAGES, or ``all`` for the recipe) on the data spec; returns an exit code.
    ``steps_like``: a trained bundle whose recorded step counts replace the budget (``recorded_steps``)."""
    plan = recorded_steps(steps_like) if steps_like is not None else None
    run = load_run_config(config_path, overrides)
    if threads:
        run = dataclasses.replace(run, train=dataclasses.replace(run.train, threads=threads))
    runtime = init_runtime()
    torch.set_num_threads(run.train.threads)
    say = report if runtime.is_main else _quiet
    out = Path(out)
    body = build_body_model(run.model.body)
    training_data = TrainingData.load(data, body, runtime, seed=seed, report=say)
    seed_everything(seed)  # a new bundle starts from the same weights on every rank
    # The recipe trains from scratch (or resumes itself); a single stage continues the bundle at OUT.
    bundle = ModelBundle(run.model) if stage == "all" and not resume else open_bundle(out, run, overrides)
    if stage == "all":
        train_recipe(training_data, bundle, body, run, out, runtime, minutes=minutes, steps=steps, resume=resume,
                     seed=seed, report=say, steps_like=plan)
    else:
        steps = planned_steps(plan, stage) if plan is not None else steps
        seconds = None if steps is not None else (minutes or 0) * 60.0 or None
        train_stage(stage, training_data, bundle, body, run, steps, out, runtime, resume=resume,
                    batch_size=batch_size, seed=seed, seconds=seconds, report=say)
    if runtime.distributed:
        dist.destroy_process_group()
    return 0


__all__ = ["DEFAULT_BATCH", "StageResult", "StepBatchSampler", "TrainConfig", "TrainRunConfig", "TrainingData",
           "checkpoint_path", "ensure_statistics", "init_runtime", "planned_steps", "recipe_finished", "recipe_stages",
           "recorded_steps", "save_checkpoint", "train_main", "train_recipe", "train_stage"]
