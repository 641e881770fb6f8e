"""MediaPipe's 3D landmarks: the error model's measurement inverts its simulation; the observation model
gives them without changing the 2D draws."""
from __future__ import annotations

import dataclasses

import numpy as np

from socialmirror.body.keypoints import smpl24_mapped_mask
from socialmirror.data.observation import ObservationConfig, ObservationModel
from socialmirror.data.world_landmarks import (WorldErrorModel, default_world_error, landmark_stature,
                                               measure_world_error, simulate_world_landmarks)

from test_observation import pair_sequence


def _truth(rng, frames=200):
    """Two people's camera-frame joints with some motion (a mapped subset is enough for the measurement)."""
    seq = pair_sequence((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), frames=frames, sway=0.2)
    obs = ObservationModel(ObservationConfig.clean()).observe(seq, seed=0)
    return obs.joints_cam.astype(np.float64) + rng.normal(0, 0.01, obs.joints_cam.shape)


def _scaled(joints, factor):
    """Joints (T, J, 3) scaled by ``factor`` about the pelvis: a smaller or larger person in the same pose."""
    return joints[:, :1] + factor * (joints - joints[:, :1])


def test_measuring_simulated_landmarks_recovers_the_error_model():
    rng = np.random.default_rng(0)
    truth = _truth(rng)
    truth[:, 1] = _scaled(truth[:, 1], 0.7)  # a child beside an adult: the landmarks give both one size
    mapped = smpl24_mapped_mask()
    noisy = mapped.copy()
    noisy[0] = False  # the pelvis is the landmarks' origin: no error of its own (as measured on MediaPipe)
    model = WorldErrorModel(tuple(np.where(noisy, 0.03, 0.0)), tuple(np.where(noisy, 0.02, 0.0)), 10.0, {},
                            stature=1.5)
    # Many people so the per-person bias is sampled enough: tile the pair.
    truths = np.concatenate([truth] * 20, axis=1)
    world = simulate_world_landmarks(truths, rng, model)
    assert np.isnan(world[..., ~mapped, :]).all() and np.isfinite(world[..., mapped, :]).all()
    measured = measure_world_error(world, truths)
    jitter = np.asarray(measured.jitter)[noisy]
    bias = np.asarray(measured.bias)[noisy]
    assert np.allclose(jitter, 0.02, rtol=0.2)
    assert np.allclose(bias.mean(), 0.03, rtol=0.25)
    assert 3.0 < measured.rotation_deg < 15.0  # the median of |N(0, 10 degrees)| ~ 6.7
    assert set(measured.bone_chord) == set(default_world_error().bone_chord)
    assert 1.5 <= measured.stature < 1.6  # the noise lengthens the chains a little (4% here)


def test_simulated_landmarks_have_mediapipes_size_whatever_the_persons():
    """Without error, the landmarks are the truth's root-relative pose scaled to the model's stature: a child
    (0.6x) and an adult give the same size and their own bone directions; a model without a stature keeps the
    true size."""
    truth = _truth(np.random.default_rng(1), frames=5)
    truth[:, 1] = _scaled(truth[:, 1], 0.6)
    zeros = (0.0,) * 24
    exact = WorldErrorModel(zeros, zeros, 0.0, {}, stature=1.45)
    world = simulate_world_landmarks(truth, np.random.default_rng(0), exact)
    mapped = smpl24_mapped_mask()
    assert np.allclose(landmark_stature(world).mean(0), 1.45, atol=1e-5)  # each person's mean over frames
    rel = truth - truth[..., :1, :]
    for p in range(2):
        ratio = np.linalg.norm(world[:, p, mapped][:, 1:], axis=-1) / np.linalg.norm(rel[:, p, mapped][:, 1:], axis=-1)
        assert np.allclose(ratio, ratio[0, 0], rtol=1e-4)  # one scale per person: the pose unchanged
    true_size = simulate_world_landmarks(truth, np.random.default_rng(0), dataclasses.replace(exact, stature=0.0))
    assert np.allclose(true_size[..., mapped, :], rel[..., mapped, :], atol=1e-5)


def test_observations_carry_landmarks_without_changing_the_2d_draws():
    seq = pair_sequence((0.0, 0.0, 0.0), (0.8, 0.0, 0.0), frames=6)
    with_world = ObservationModel().observe(seq, seed=3)
    without = ObservationModel(dataclasses.replace(ObservationConfig(), world_landmarks=False)).observe(seq, seed=3)
    assert np.array_equal(with_world.keypoints2d, without.keypoints2d) and without.world_joints is None
    again = ObservationModel().observe(seq, seed=3)
    assert np.array_equal(with_world.world_joints, again.world_joints, equal_nan=True)
    mapped = smpl24_mapped_mask()
    detected = with_world.detected
    assert np.isnan(with_world.world_joints[..., ~mapped, :]).all()
    assert np.isnan(with_world.world_joints[~detected]).all()
    # Root-relative: the pelvis (hip midpoint) near the origin, up to the measured noise.
    assert np.abs(with_world.world_joints[detected][:, 0]).max() < 0.5
    picked = with_world.select_frames([0, 0, 5])
    assert picked.world_joints.shape[0] == 3


def test_shipped_error_model_loads_and_names_every_bone():
    model = default_world_error()
    assert len(model.bias) == 24 and len(model.bone_chord) == 12
    assert all(0.0 < v < 2.0 for v in model.bone_chord.values())
    legs = model.bone_chord["left_knee-left_ankle"]
    forearms = model.bone_chord["left_elbow-left_wrist"]
    assert legs < forearms  # MediaPipe's legs are its most reliable 3D (measured)
    assert 1.3 < model.stature < 1.7
