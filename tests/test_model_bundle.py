"""F_img features, the initial estimator, and the model bundle's checkpoints."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from socialmirror.body.motion import motion_to_joints
from socialmirror.models.bundle import (
    CheckpointError,
    ModelBundle,
    ModelBundleConfig,
    default_bundle_path,
    join_initial_estimators,
    load_bundle,
    save_bundle,
)
from socialmirror.models.features import (IMG_FEATURE_DIM, WORLD_FEATURE_DIM, observation_feature_dim,
                                          observation_features, world_landmark_features)
from socialmirror.models.initial_estimator import (
    InitialEnsemble,
    InitialEstimator,
    InitialEstimatorConfig,
    motion_to_raw,
    raw_to_motion,
)
from socialmirror.body.motion import MotionRepresentation


def tiny_bundle_config(**changes) -> ModelBundleConfig:
    from socialmirror.config import parse_overrides, update
    overrides = [f"{part}.{key}={value}" for part in ("initial", "geometry", "infiller", "refiner")
                 for key, value in (("dim", 32), ("depth", 1))]
    return update(ModelBundleConfig(**changes), parse_overrides(overrides))


def test_observation_features_hand_values():
    kp = torch.zeros(24, 3)
    kp[0] = torch.tensor([150.0, 260.0, 0.9])  # pelvis
    kp[5] = torch.tensor([999.0, 999.0, 0.0])  # missing: must read as zeros
    box = torch.tensor([100.0, 200.0, 200.0])
    K = torch.tensor([[1000.0, 0.0, 320.0], [0.0, 1000.0, 240.0], [0.0, 0.0, 1.0]])
    f = observation_features(kp, box, K)
    assert f.shape == (IMG_FEATURE_DIM,) == (75,)
    assert torch.allclose(f[0:3], torch.tensor([0.25, 0.3, 0.9]))
    assert torch.equal(f[15:18], torch.zeros(3))
    assert torch.allclose(f[72:], torch.tensor([(100 - 320) / 1000, (200 - 240) / 1000, 0.2]))


def test_observation_features_batched_intrinsics_and_image_slot():
    kp = torch.rand(3, 2, 16, 24, 3) * 100
    boxes = torch.rand(3, 2, 16, 3) * 50 + 50
    K = torch.eye(3).repeat(3, 1, 1)
    K[:, 0, 0] = K[:, 1, 1] = torch.tensor([500.0, 600.0, 700.0])
    f = observation_features(kp, boxes, K)
    assert f.shape == (3, 2, 16, 75)
    assert torch.allclose(f[1, 0, 3, -1], boxes[1, 0, 3, 2] / 600.0)
    g = observation_features(kp, boxes, K, image_embedding=torch.ones(3, 2, 16, 8))
    assert g.shape == (3, 2, 16, 83) and torch.equal(g[..., :75], f)


def test_world_landmark_features_hand_values():
    """(x, y, z, visibility) per joint; an unknown joint (NaN, or visibility 0) is all zeros."""
    world = torch.zeros(24, 3)
    world[1] = torch.tensor([0.1, -0.2, 0.05])
    world[2] = float("nan")
    vis = torch.full((24,), 0.8)
    vis[3] = 0.0
    world[3] = torch.tensor([1.0, 1.0, 1.0])
    f = world_landmark_features(world, vis)
    assert f.shape == (WORLD_FEATURE_DIM,) == (96,)
    assert torch.allclose(f[4:8], torch.tensor([0.1, -0.2, 0.05, 0.8]))
    assert torch.equal(f[8:12], torch.zeros(4)) and torch.equal(f[12:16], torch.zeros(4))
    assert torch.allclose(world_landmark_features(world)[7], torch.tensor(1.0))  # no visibility: 1 where finite
    assert observation_feature_dim(0, True) == 171 and observation_feature_dim(8, True) == 179


def test_bundle_reads_mediapipe_3d_only_when_built_with_it():
    torch.manual_seed(0)
    kp = torch.rand(1, 2, 16, 24, 3) * 100
    boxes = torch.rand(1, 2, 16, 3) * 50 + 50
    K = torch.eye(3)
    K[0, 0] = K[1, 1] = 500.0
    world = torch.randn(1, 2, 16, 24, 3) * 0.3
    conf = torch.ones(1, 2, 16, 24)
    plain = ModelBundle(tiny_bundle_config())
    assert plain.config.img_dim == 75
    assert torch.equal(plain.observation_features(kp, boxes, K, world, conf), observation_features(kp, boxes, K))
    reading = ModelBundle(tiny_bundle_config(world_landmarks=True))
    assert reading.config.img_dim == 171 and reading.initial.config.img_dim == 171
    with_3d = reading.observation_features(kp, boxes, K, world, conf)
    without = reading.observation_features(kp, boxes, K)  # no evidence: zeros, as training's dropout shows
    assert with_3d.shape == without.shape == (1, 2, 16, 171)
    assert torch.equal(with_3d[..., :75], without[..., :75]) and torch.equal(without[..., 75:], torch.zeros(1, 2, 16, 96))
    assert torch.allclose(with_3d[0, 1, 4, 75:78], world[0, 1, 4, 0])
    x = reading.initial(with_3d, torch.ones(1, 2, 16, dtype=torch.bool))
    assert not torch.allclose(x, reading.initial(without, torch.ones(1, 2, 16, dtype=torch.bool)))


def test_initial_estimator_outputs_valid_parameters():
    torch.manual_seed(0)
    est = InitialEstimator(InitialEstimatorConfig(dim=32, depth=1))
    torch.nn.init.normal_(est.head.weight, std=1.0)  # far from the mean: the constraints must still hold
    mask = torch.ones(2, 2, 16, dtype=torch.bool)
    mask[0, 1, 3:7] = False
    x = est(torch.randn(2, 2, 16, 75), mask)
    rep = MotionRepresentation(6)
    assert x.shape == (2, 2, 16, 153)
    rot6d, shape, cam = rep.split(x)
    assert (shape >= 0).all() and (shape <= 1).all()
    assert (cam[..., 0] > 0).all()
    R = rep.to_world(x, torch.tensor([100.0, 100.0, 200.0]), torch.eye(3)).rotmats
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand_as(R), atol=1e-5)


def test_untrained_estimator_predicts_the_target_mean():
    rep = MotionRepresentation(6)
    est = InitialEstimator(InitialEstimatorConfig(dim=32, depth=1))
    targets = raw_to_motion(torch.randn(50, 153) * 0.1 + 0.3, rep)
    est.set_output_statistics(targets)
    out = est(torch.randn(1, 2, 4, 75))
    assert torch.allclose(raw_to_motion(motion_to_raw(targets, rep), rep), targets, atol=1e-4)
    assert torch.allclose(out[0, 0, 0], raw_to_motion(motion_to_raw(targets, rep).mean(0), rep), atol=1e-5)


def test_bundle_round_trip(tmp_path):
    torch.manual_seed(1)
    bundle = ModelBundle(tiny_bundle_config())
    bundle.set_statistics(torch.randn(153), torch.rand(153) + 0.5, torch.rand(153) + 0.1)
    bundle.metadata["stages"] = {"initial": {"steps": 3}}
    path = save_bundle(bundle, tmp_path / "b.pt")
    loaded = load_bundle(path, config=tiny_bundle_config())
    assert loaded.metadata["stages"] == {"initial": {"steps": 3}}
    for (name, a), (_, b) in zip(bundle.state_dict().items(), loaded.state_dict().items()):
        exact = name in dict(bundle.named_buffers())  # buffers are stored in float32, parameters in float16
        assert torch.allclose(a, b, rtol=0 if exact else 1e-3, atol=0 if exact else 1e-3), name
    full = load_bundle(save_bundle(bundle, tmp_path / "full.pt", half=False))
    assert all(torch.equal(a, b) for a, b in zip(bundle.state_dict().values(), full.state_dict().values()))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_corrupt_and_mismatched_checkpoints(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_bundle(tmp_path / "nope.pt")
    assert "no checkpoint" in _one_line(e)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError) as e:
        load_bundle(tmp_path / "junk.pt")
    assert "not a readable" in _one_line(e)
    path = save_bundle(ModelBundle(tiny_bundle_config()), tmp_path / "b.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as e:
        load_bundle(truncated)
    _one_line(e)
    with pytest.raises(CheckpointError) as e:
        load_bundle(path, config=tiny_bundle_config(clip_len=32))
    assert "clip_len" in _one_line(e)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["x_mean"] = torch.zeros(10)
    torch.save(payload, tmp_path / "shapes.pt")
    with pytest.raises(CheckpointError) as e:
        load_bundle(tmp_path / "shapes.pt")
    assert "wrong shape" in _one_line(e)
    assert isinstance(e.value, ValueError)


def test_motion_to_joints_matches_the_body(anny_body):
    rep = MotionRepresentation(6)
    torch.manual_seed(2)
    upper = torch.zeros(1, 2, 3, 24, 3, 3).normal_(0, 0.2).triu(1)
    rot = torch.linalg.matrix_exp(upper - upper.transpose(-1, -2))  # exp of a skew matrix: a rotation
    shape = torch.full((1, 2, 3, 6), 0.5)
    transl = torch.tensor([0.0, 0.0, 4.0]).expand(1, 2, 3, 3)
    boxes = torch.tensor([320.0, 240.0, 300.0]).expand(1, 2, 3, 3)
    K = torch.tensor([[[1000.0, 0.0, 320.0], [0.0, 1000.0, 240.0], [0.0, 0.0, 1.0]]])
    from socialmirror.body.motion import MotionParams
    x = rep.from_world(MotionParams(rot, shape, transl), boxes, K[:, None, None])
    joints = motion_to_joints(x, boxes, K, anny_body)
    expected = anny_body.joints(rot, shape, transl)
    assert joints.shape == (1, 2, 3, 24, 3)
    assert math.isclose(float((joints - expected).abs().max()), 0.0, abs_tol=1e-4)


def _strip_linear_slot(path, out, drop_flag: bool = True):
    """``path`` rewritten as a bundle file of before the ``geometry_linear`` slot (no tensors, no flag)."""
    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.startswith("geometry_linear.")}
    if drop_flag:
        payload["config"].pop("geometry_linear")
    torch.save(payload, out)
    return out


def test_old_bundle_without_the_linear_slot_loads(tmp_path, anny_body):
    from socialmirror.inference.estimator import MethodUnavailableError, TwoPersonMotionEstimator
    torch.manual_seed(3)
    bundle = ModelBundle(tiny_bundle_config(geometry_linear=True))
    path = save_bundle(bundle, tmp_path / "new.pt")
    for drop_flag in (True, False):  # an old file (no flag), or one whose flag is on but whose tensors are gone
        old = load_bundle(_strip_linear_slot(path, tmp_path / f"old{drop_flag}.pt", drop_flag),
                          config=tiny_bundle_config(geometry_linear=True))
        assert old.geometry_linear is None and not old.config.geometry_linear
        assert not any(k.startswith("geometry_linear.") for k in old.state_dict())
        reference = bundle.state_dict()  # every other tensor as saved (parameters in float16)
        assert all(torch.allclose(v, reference[k], rtol=1e-3, atol=1e-3) for k, v in old.state_dict().items())
    with pytest.raises(MethodUnavailableError, match="Linear"):
        TwoPersonMotionEstimator(old, anny_body, "socialmirror-linear")
    # Re-saved, it is still a bundle without the slot; part of the slot missing is still a mismatch.
    assert load_bundle(save_bundle(old, tmp_path / "resaved.pt")).geometry_linear is None
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].pop("geometry_linear.head.weight")
    torch.save(payload, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError) as e:
        load_bundle(tmp_path / "partial.pt")
    assert "missing" in _one_line(e)


def test_new_bundle_round_trips_the_linear_slot(tmp_path):
    assert ModelBundle(tiny_bundle_config()).geometry_linear is None  # off unless the config asks for it
    torch.manual_seed(4)
    bundle = ModelBundle(tiny_bundle_config(geometry_linear=True))
    linear = bundle.geometry_linear
    assert linear is not None and linear.config.embedding == "linear"
    assert bundle.geometry.config.embedding == "stgcn"
    assert dataclasses.replace(linear.config, embedding="stgcn") == bundle.geometry.config
    with torch.no_grad():
        linear.head.weight.normal_()  # zero-initialised: make the round trip tell
    loaded = load_bundle(save_bundle(bundle, tmp_path / "b.pt", half=False))
    assert loaded.config.geometry_linear and loaded.geometry_linear.config.embedding == "linear"
    state = loaded.state_dict()
    assert any(k.startswith("geometry_linear.") for k in state)
    assert all(torch.equal(v, state[k]) for k, v in bundle.state_dict().items())
    # A bundle without the slot gets one added (the trainer does this), and then saves and loads it.
    old = ModelBundle(tiny_bundle_config())
    added = old.add_geometry_linear()
    assert old.add_geometry_linear() is added and old.config.geometry_linear
    assert load_bundle(save_bundle(old, tmp_path / "added.pt")).geometry_linear is not None


def test_text_encoder_recorded_and_older_configs_load(tmp_path):
    """The text encoder is part of the trained model (saved in the bundle); a config stored before it was
    (no text_encoder, and the retired diffusion.sampling_steps) still loads, as MiniLM."""
    bundle = ModelBundle(tiny_bundle_config(text_encoder="clip:/weights/ViT-B-32.pt"))
    path = save_bundle(bundle, tmp_path / "new.pt")
    assert load_bundle(path).config.text_encoder == "clip:/weights/ViT-B-32.pt"
    payload = torch.load(path, weights_only=True)
    del payload["config"]["text_encoder"]
    payload["config"]["diffusion"]["sampling_steps"] = 5
    torch.save(payload, tmp_path / "old.pt")
    old = load_bundle(tmp_path / "old.pt")
    assert old.config.text_encoder == "minilm" and not hasattr(old.config.diffusion, "sampling_steps")
    assert all(torch.equal(v, old.state_dict()[k]) for k, v in load_bundle(path).state_dict().items())


@pytest.mark.skipif(not default_bundle_path().is_file(), reason="no shipped weights")
def test_shipped_bundle_loads_unchanged():
    """The shipped file predates the text_encoder field and holds the retired diffusion.sampling_steps."""
    stored = torch.load(default_bundle_path(), weights_only=True)["config"]
    assert load_bundle().config.text_encoder == stored.get("text_encoder", "minilm") == "minilm"


def test_configs_stored_before_the_3d_input_load_without_it(tmp_path):
    bundle = ModelBundle(tiny_bundle_config(world_landmarks=True))
    path = save_bundle(bundle, tmp_path / "new.pt")
    assert load_bundle(path).config.world_landmarks
    plain = save_bundle(ModelBundle(tiny_bundle_config()), tmp_path / "plain.pt")
    payload = torch.load(plain, weights_only=True)
    del payload["config"]["world_landmarks"]
    torch.save(payload, tmp_path / "old.pt")
    assert not load_bundle(tmp_path / "old.pt").config.world_landmarks


def _randomised(config: InitialEstimatorConfig, seed: int) -> InitialEstimator:
    torch.manual_seed(seed)
    estimator = InitialEstimator(config)
    torch.nn.init.normal_(estimator.head.weight, std=0.3)  # the head starts at zero: make the members differ
    return estimator


def test_an_ensemble_estimates_the_mean_of_its_members_raw_outputs():
    config = InitialEstimatorConfig(dim=32, depth=1, members=2)
    a, b = _randomised(config, 0), _randomised(config, 1)
    ensemble = InitialEnsemble(config, [a, b])
    features, rep = torch.randn(1, 2, 8, 75), MotionRepresentation(6)
    raw_a, raw_b = a.forward_raw(features), b.forward_raw(features)
    x = ensemble(features)
    # shape logits and the crop camera's log scale averaged: the geometric mean of the two scales
    _, shape, cam = rep.split(x)
    _, logit_a, cam_a = rep.split(raw_a)
    _, logit_b, cam_b = rep.split(raw_b)
    torch.testing.assert_close(shape, torch.sigmoid((logit_a + logit_b) / 2))
    torch.testing.assert_close(cam[..., 0], torch.sqrt(cam_a[..., 0].exp() * cam_b[..., 0].exp()))
    # two copies of one estimator are that estimator
    torch.testing.assert_close(InitialEnsemble(config, [a, a])(features), a(features))


def test_an_ensemble_bundle_round_trips_and_a_single_one_keeps_its_keys(tmp_path):
    two = tiny_bundle_config(initial=InitialEstimatorConfig(dim=32, depth=1, members=2))
    bundle = ModelBundle(two)
    assert isinstance(bundle.initial, InitialEnsemble) and len(bundle.initial.members) == 2
    bundle.initial.set_output_statistics(raw_to_motion(torch.randn(50, 153) * 0.1 + 0.3, MotionRepresentation(6)))
    for member in bundle.initial.members:
        torch.nn.init.normal_(member.head.weight, std=0.3)
    loaded = load_bundle(save_bundle(bundle, tmp_path / "two.pt", half=False), config=two)
    features = torch.randn(1, 2, 4, 75)
    torch.testing.assert_close(loaded.initial(features), bundle.initial(features))
    assert isinstance(ModelBundle(tiny_bundle_config()).initial, InitialEstimator)
    assert any(k.startswith("initial.head.") for k in ModelBundle(tiny_bundle_config()).state_dict())


def test_joining_gives_a_bundle_the_other_bundles_initial_estimators(tmp_path):
    torch.manual_seed(0)
    base, other = ModelBundle(tiny_bundle_config()), ModelBundle(tiny_bundle_config())
    for bundle, seed in ((base, 0), (other, 1)):
        bundle.initial = _randomised(bundle.config.initial, seed)
        bundle.metadata["stages"] = {"initial": {"steps": str(10 + seed)}}
    features = torch.randn(1, 2, 4, 75)
    expected = raw_to_motion((base.initial.forward_raw(features) + other.initial.forward_raw(features)) / 2,
                             MotionRepresentation(6))
    geometry = {k: v.clone() for k, v in base.geometry.state_dict().items()}
    joined = load_bundle(save_bundle(join_initial_estimators(base, [other]), tmp_path / "joined.pt", half=False))
    assert joined.config.initial.members == 2
    assert [r["steps"] for r in joined.metadata["stages"]["initial"]["members"]] == ["10", "11"]
    torch.testing.assert_close(joined.initial(features), expected)
    assert all(torch.equal(v, joined.geometry.state_dict()[k]) for k, v in geometry.items())  # the rest is the base's
    wider = ModelBundle(tiny_bundle_config(world_landmarks=True))
    with pytest.raises(CheckpointError, match="differ"):
        join_initial_estimators(ModelBundle(tiny_bundle_config()), [wider])
