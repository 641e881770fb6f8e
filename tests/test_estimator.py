"""TwoPersonMotionEstimator on a tiny random bundle: shapes, determinism, presets, person swap, NaN guard,
penetration guidance, contacts."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from _estimator_helpers import IMAGE_SIZE, make_scene, tiny_bundle
from socialmirror.body.skeleton import JOINT_INDEX
from socialmirror.data.observation import PairObservation
from socialmirror.losses.spheres import sphere_penetration_mm
from socialmirror.inference import (
    METHOD_PRESETS,
    MethodUnavailableError,
    MotionEstimate,
    TwoPersonMotionEstimator,
    method_config,
)
from socialmirror.inference.methods import NO_FIT
from socialmirror.semantics.annotations import Annotations, ClipAnnotation, Contact


@pytest.fixture(scope="module")
def bundle(anny_body):
    # Statistics from people facing the camera: the untrained initial estimator then predicts an upright
    # person facing the camera, placed by its box.
    reference = make_scene(anny_body, 16, yaw_a=0.0, yaw_b=0.0)
    return tiny_bundle(anny_body, reference.x)


@pytest.fixture(scope="module")
def scene40(anny_body):
    return make_scene(anny_body, 40)


def run(bundle, body, scene, method="closeint", seed=0, annotations=None, text=None, **overrides):
    config = method_config(method)
    if overrides:
        config = dataclasses.replace(config, **overrides)
    estimator = TwoPersonMotionEstimator(bundle, body, config, seed=seed)
    return estimator.estimate(observed(scene), annotations=annotations, text_embeddings=text, progress=False)


def observed(scene, image_size=IMAGE_SIZE) -> PairObservation:
    """The scene's keypoints, boxes and camera as the record the estimator reads."""
    return PairObservation(scene.keypoints2d, scene.boxes, scene.K, image_size, 30.0, np.arange(2), up=None)


def hand_annotations(num_frames: int, confidence: float = 0.9) -> tuple[Annotations, torch.Tensor]:
    clips = [ClipAnnotation(start, min(start + 16, num_frames), ("a person shakes hands", "a person shakes hands"),
                            (Contact("right_wrist", "right_wrist", 0, min(15, num_frames - start - 1)),),
                            confidence=confidence)
             for start in range(0, num_frames, 16)]
    text = torch.randn(len(clips), 2, 384, generator=torch.Generator().manual_seed(3))
    return Annotations(clips), text


def test_the_window_is_the_bundles_clip_length(anny_body, scene40):
    """The clip length belongs to the trained model: the estimator reads it from the bundle."""
    reference = make_scene(anny_body, 16, yaw_a=0.0, yaw_b=0.0)
    short = tiny_bundle(anny_body, reference.x, clip_len=8)
    estimator = TwoPersonMotionEstimator(short, anny_body, method_config("closeint"))
    assert estimator.window == 8
    est = estimator.estimate(observed(scene40), progress=False)
    assert est.joints.shape == (40, 2, 24, 3) and np.isfinite(est.joints).all()
    with pytest.raises(ValueError, match="stride"):
        TwoPersonMotionEstimator(tiny_bundle(anny_body, reference.x, clip_len=4), anny_body, "closeint")


@pytest.mark.parametrize("num_frames", [10, 16, 40])
def test_shapes_and_consistency(bundle, anny_body, num_frames, tmp_path):
    scene = make_scene(anny_body, num_frames)
    annotations, text = hand_annotations(num_frames)
    est = run(bundle, anny_body, scene, "socialmirror", annotations=annotations, text=text)
    T = num_frames
    assert est.rotmats.shape == (T, 2, 24, 3, 3) and est.pose6d.shape == (T, 2, 24, 6)
    assert est.shape.shape == (2, anny_body.shape_dim) and est.transl.shape == (T, 2, 3)
    assert est.joints.shape == (T, 2, 24, 3) and est.x.shape == (T, 2, bundle.motion_dim)
    assert est.initial_joints.shape == (T, 2, 24, 3) and est.geometry_joints.shape == (T, 2, 24, 3)
    for array in (est.rotmats, est.joints, est.x, est.shape, est.initial_joints, est.geometry_joints):
        assert np.isfinite(array).all()
    eye = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(est.rotmats @ est.rotmats.swapaxes(-1, -2), np.broadcast_to(eye, est.rotmats.shape),
                               atol=1e-4)
    np.testing.assert_allclose(est.pose6d, est.rotmats[..., :, :2].reshape(T, 2, 24, 6), atol=1e-6)
    np.testing.assert_allclose(est.joints[:, :, JOINT_INDEX["pelvis"]], est.transl, atol=1e-5)
    assert est.joints[..., 2].min() > 0.5  # in front of the camera
    assert {"initial", "geometry", "infiller", "refiner", "decode", "total"} <= set(est.timings)
    assert est.method == "socialmirror"
    # The npz round trip the pipeline's cache uses (no pickles).
    path = tmp_path / "estimate.npz"
    np.savez(path, **est.to_arrays())
    with np.load(path, allow_pickle=False) as z:
        back = MotionEstimate.from_arrays({k: z[k] for k in z.files})
    np.testing.assert_array_equal(back.joints, est.joints)
    np.testing.assert_array_equal(back.geometry_joints, est.geometry_joints)
    assert back.timings == pytest.approx(est.timings) and back.method == est.method
    assert back.warnings == est.warnings


def test_vertices_helper_and_tensor_inputs(bundle, anny_body):
    scene = make_scene(anny_body, 10)
    est = run(bundle, anny_body, scene, "closeint")
    tensors = PairObservation(torch.as_tensor(scene.keypoints2d), torch.as_tensor(scene.boxes),
                              torch.as_tensor(scene.K), IMAGE_SIZE, 30.0, np.arange(2), up=None)
    as_tensors = TwoPersonMotionEstimator(bundle, anny_body, "closeint").estimate(tensors, progress=False)
    np.testing.assert_array_equal(as_tensors.joints, est.joints)
    verts = est.vertices(anny_body, batch_frames=4)
    assert verts.shape == (10, 2, anny_body.num_vertices, 3) and np.isfinite(verts).all()
    assert est.geometry_joints is None  # closeint does not run the Geometry Optimizer
    assert MotionEstimate.from_arrays(est.to_arrays()).geometry_joints is None


@pytest.mark.slow
def test_same_seed_same_result_any_batching(bundle, anny_body, scene40):
    a = run(bundle, anny_body, scene40, "socialmirror")
    one_by_one = run(bundle, anny_body, scene40, "socialmirror", batch_windows=1)
    again = run(bundle, anny_body, scene40, "socialmirror")
    np.testing.assert_array_equal(a.joints, again.joints)
    # Windows one at a time: the same windows and the same noise, so the same result (up to float order).
    np.testing.assert_allclose(a.x, one_by_one.x, atol=1e-5)
    # The refiner in overlapping chunks (the long-sequence path) gives a finite result of the same length.
    chunked = run(bundle, anny_body, scene40, "socialmirror", refine_chunk=24, refine_overlap=8)
    assert chunked.x.shape == a.x.shape and np.isfinite(chunked.joints).all()
    other = run(bundle, anny_body, scene40, "socialmirror", seed=1)
    assert not np.allclose(a.x, other.x)


@pytest.mark.slow
def test_every_preset_runs(bundle, anny_body, scene40):
    annotations, text = hand_annotations(40)
    results = {}
    for name in METHOD_PRESETS:
        est = run(bundle, anny_body, scene40, name, annotations=annotations, text=text)
        assert np.isfinite(est.joints).all(), name
        assert est.method == name
        results[name] = est.x
    assert not np.allclose(results["socialmirror"], results["no-text"])  # text reaches the ControlNet
    assert not np.allclose(results["socialmirror"], results["no-refiner"])
    assert not np.allclose(results["closeint"], results["independent"])
    closeint = TwoPersonMotionEstimator(bundle, anny_body, "closeint")
    full = TwoPersonMotionEstimator(bundle, anny_body, "socialmirror")
    assert not closeint.uses_text and not closeint.uses_contacts and full.uses_text and full.uses_contacts


def test_linear_ablation_needs_its_network(anny_body, bundle):
    reference = make_scene(anny_body, 16, yaw_a=0.0, yaw_b=0.0)
    without = tiny_bundle(anny_body, reference.x, with_linear=False)
    with pytest.raises(MethodUnavailableError, match="Linear"):
        TwoPersonMotionEstimator(without, anny_body, "socialmirror-linear")
    with pytest.raises(ValueError, match="unknown method"):
        TwoPersonMotionEstimator(bundle, anny_body, "no-such-method")


def test_independent_falls_back_to_cutting_cross_attention(anny_body, bundle, scene40, caplog):
    reference = make_scene(anny_body, 16, yaw_a=0.0, yaw_b=0.0)
    base = tiny_bundle(anny_body, reference.x)
    base.independent = None
    with caplog.at_level(logging.WARNING):
        est = run(base, anny_body, scene40, "independent")
    assert "independent" in caplog.text and np.isfinite(est.joints).all()
    # Person b's observations no longer reach person a.
    moved = dataclasses.replace(scene40, keypoints2d=scene40.keypoints2d.copy())
    moved.keypoints2d[:, 1, :, :2] += 30.0
    est_moved = run(base, anny_body, moved, "independent")
    np.testing.assert_allclose(est.x[:, 0], est_moved.x[:, 0], atol=1e-5)


def test_person_swap_swaps_outputs_closeint(bundle, anny_body, scene40):
    swapped = dataclasses.replace(scene40, keypoints2d=scene40.keypoints2d[:, ::-1].copy(),
                                  boxes=scene40.boxes[:, ::-1].copy())
    a = run(bundle, anny_body, scene40, "closeint")
    b = run(bundle, anny_body, swapped, "closeint")
    np.testing.assert_allclose(b.joints[:, ::-1], a.joints, atol=1e-4)
    np.testing.assert_allclose(b.shape[::-1], a.shape, atol=1e-5)


@pytest.mark.slow
def test_nan_guard_falls_back_to_previous_stage(bundle, anny_body, scene40, monkeypatch, caplog):
    clean = run(bundle, anny_body, scene40, "socialmirror")
    no_refiner = run(bundle, anny_body, scene40, "no-refiner")
    original = type(bundle.refiner).forward

    def broken(self, motion, mask=None):
        out = original(self, motion, mask).clone()
        out[:, 0, 5:9] = float("nan")
        return out

    monkeypatch.setattr(type(bundle.refiner), "forward", broken)
    with caplog.at_level(logging.WARNING):
        est = run(bundle, anny_body, scene40, "socialmirror")
    assert np.isfinite(est.joints).all() and est.warnings
    assert "temporal refiner" in caplog.text
    np.testing.assert_allclose(est.x[5:9, 0], no_refiner.x[5:9, 0], atol=1e-5)  # the infiller's output there
    np.testing.assert_allclose(est.x[:, 1], clean.x[:, 1], atol=1e-6)  # untouched elsewhere
    monkeypatch.undo()
    # Non-finite keypoints and boxes in the input are treated as missing detections.
    bad = dataclasses.replace(scene40, keypoints2d=scene40.keypoints2d.copy(), boxes=scene40.boxes.copy())
    bad.keypoints2d[3, 0, :4] = np.nan
    bad.keypoints2d[7, 1] = 0.0
    bad.boxes[7, 1] = np.nan
    est_bad = run(bundle, anny_body, bad, "socialmirror")
    assert np.isfinite(est_bad.joints).all()


def test_penetration_guidance_separates_overlapping_people(bundle, anny_body):
    # Person b stands 12 cm beside and 15 cm behind person a, both facing the camera: the bodies overlap,
    # and the untrained initial estimate (placed by the boxes) overlaps them too.
    scene = make_scene(anny_body, 16, offset_b=(0.12, 0.0, 0.15), yaw_a=0.0, yaw_b=0.0)

    def proxy(est):
        j = torch.as_tensor(est.joints)
        return float(sphere_penetration_mm(j[:, 0], j[:, 1]).mean())

    closeint = run(bundle, anny_body, scene, "closeint")
    full = run(bundle, anny_body, scene, "socialmirror")
    assert proxy(closeint) > 5.0
    assert proxy(full) < 0.5 * proxy(closeint)


def wrist_gap(joints: np.ndarray) -> float:
    """Mean distance between the two people's right wrists, (T, 2, 24, 3) -> metres."""
    wrist = JOINT_INDEX["right_wrist"]
    return float(np.linalg.norm(joints[:, 0, wrist] - joints[:, 1, wrist], axis=-1).mean())


@pytest.fixture(scope="module")
def handshake(bundle, anny_body, scene40):
    """A handshake annotated on the scene whose right hands the image shows about a metre apart: the
    `socialmirror` preset's guided sampler alone (no fit), shared by the tests below."""
    annotations, text = hand_annotations(40)
    guided = run(bundle, anny_body, scene40, "socialmirror", annotations=annotations, text=text, fit=NO_FIT)
    return annotations, text, guided


def test_contact_guidance_closes_annotated_contact(bundle, anny_body, scene40, handshake):
    annotations, text, with_contact = handshake
    # The guidance alone (the presets' fit has no contact term: it follows the image).
    without = run(bundle, anny_body, scene40, "no-contact", annotations=annotations, text=text, fit=NO_FIT)
    assert wrist_gap(with_contact.joints) < wrist_gap(without.joints) - 0.05


def test_the_fit_follows_the_image_where_an_annotated_contact_disagrees(bundle, anny_body, scene40, handshake):
    """The `socialmirror` preset's fit has no contact term: the annotated handshake is closed by the guidance,
    then opened again by the fit towards the image's gap (with the contact term in the fit, measured: the hands
    ended 8 cm apart)."""
    annotations, text, guided = handshake
    truth = wrist_gap(scene40.joints)
    fitted = run(bundle, anny_body, scene40, "socialmirror", annotations=annotations, text=text)
    assert abs(wrist_gap(fitted.joints) - truth) < abs(wrist_gap(guided.joints) - truth) - 0.02
