"""The fit to the evidence: its maths on exact, synthetic evidence."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from socialmirror.body.skeleton import JOINT_INDEX
from socialmirror.geometry.camera import project
from socialmirror.geometry.rotations import matrix_to_6d, sixd_to_matrix
from socialmirror.body.bones import bone_directions
from socialmirror.inference.fit import (FOOT_JOINTS, EvidenceFitConfig, EvidenceObjective, FitEvidence, FitVariables,
                                       fit_to_evidence, place_in_depth, toward_floor_ratio)

torch.set_num_threads(1)

W, H = 640, 480
K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]], dtype=np.float32)
# Only the reprojection: every prior so weak that it cannot hold the fit back.
REPROJECTION_ONLY = EvidenceFitConfig(iterations=300, lr=0.02, world_weight=0.0, rotation_sigma=1e3,
                                      position_sigma=1e3, acceleration_sigma=1e3, penetration_weight=0.0,
                                      limit_weight=0.0, contact_weight=0.0, reprojection_robust_scale=10.0)


def _pose(rng: np.random.Generator, frames: int, scale: float) -> np.ndarray:
    """(frames, 2, 24, 3, 3) small random local rotations drifting slowly over the frames (a smooth motion);
    the persons face the camera (the body frame faces +z and has y up, the camera looks along +z, y down)."""
    drift = np.linspace(0.0, 1.0, frames)[:, None, None, None]
    steps = rng.standard_normal((2, 2, 24, 6))
    noise = torch.as_tensor(steps[0] + 0.2 * drift * steps[1], dtype=torch.float32)
    r6 = matrix_to_6d(torch.eye(3)) + scale * noise
    rot = sixd_to_matrix(r6)
    face = torch.tensor([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]])  # y down in the camera
    flip = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    rot[:, :, 0] = face @ flip @ rot[:, :, 0]
    return rot.numpy()


def _scene(anny_body, rng, frames=3, scale=0.15):
    rot = _pose(rng, frames, scale)
    transl = np.zeros((frames, 2, 3), dtype=np.float32)
    transl[:, 0] = (-0.5, 0.0, 3.5)
    transl[:, 1] = (0.5, 0.0, 3.6)
    shape = anny_body.default_shape(2).numpy()
    with torch.no_grad():
        joints = anny_body.joints(torch.as_tensor(rot), torch.as_tensor(shape), torch.as_tensor(transl))
        uv = project(joints, torch.as_tensor(K)).numpy()
    keypoints = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,), dtype=np.float32)], -1)
    return rot, transl, shape, joints.numpy(), keypoints


def test_reprojection_only_fit_recovers_a_known_pose_from_its_exact_projection(anny_body):
    rng = np.random.default_rng(0)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng)
    # Start from a perturbed pose and a pelvis 10 cm off.
    noise = matrix_to_6d(torch.eye(3)) + 0.05 * torch.as_tensor(rng.standard_normal((3, 2, 24, 6)),
                                                                dtype=torch.float32)
    start = (torch.as_tensor(rot) @ sixd_to_matrix(noise)).numpy()
    start_transl = transl + np.float32([0.05, -0.05, 0.1])
    fitted, report = fit_to_evidence(anny_body, start, start_transl, shape, FitEvidence(keypoints, K, (W, H)),
                                     REPROJECTION_ONLY)
    with torch.no_grad():
        start_joints = anny_body.joints(torch.as_tensor(start), torch.as_tensor(shape),
                                        torch.as_tensor(start_transl)).numpy()
    pix = project(torch.as_tensor(fitted.joints), torch.as_tensor(K)).numpy()
    use = [i for n, i in JOINT_INDEX.items() if n not in ("pelvis", "neck")]
    assert np.abs(pix - keypoints[..., :2])[..., use, :].max() < 2.0  # pixels
    # In 3D, depth included: what one view leaves open is a few centimetres of depth at the extremities.
    error, start_error = (np.linalg.norm(j - joints, axis=-1).mean() for j in (fitted.joints, start_joints))
    assert error < 0.03 and error < 0.25 * start_error
    assert report.objective_after < 0.05 * report.objective_before


def test_keypoints_outside_the_image_or_unconfident_are_left_to_the_priors(anny_body):
    rng = np.random.default_rng(3)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng)
    bad = keypoints.copy()
    arm = [JOINT_INDEX[n] for n in ("left_elbow", "left_wrist", "left_hand")]
    bad[:, 0, arm, 0] = -40.0  # truncated: the arm left the frame, its "detections" are garbage
    bad[:, 1, arm, :2] += 150.0
    bad[:, 1, arm, 2] = 0.1  # below the confidence
    fitted, report = fit_to_evidence(anny_body, rot, transl, shape, FitEvidence(bad, K, (W, H)),
                                     dataclasses.replace(EvidenceFitConfig(), iterations=60, world_weight=0.0,
                                                         limit_weight=0.0, penetration_weight=0.0))
    # The evidence that counts agrees with the start (random poses may break joint limits or let arms
    # overlap: those terms are off here): nothing moves.
    assert np.linalg.norm(fitted.joints - joints, axis=-1).max() < 0.01
    assert report.after["reprojection"] < 1e-3


def test_the_fit_never_increases_its_own_objective(anny_body):
    rng = np.random.default_rng(4)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng, frames=4)
    noisy = keypoints.copy()
    noisy[..., :2] += rng.normal(0.0, 15.0, noisy[..., :2].shape)
    world = joints - joints[..., :1, :] + rng.normal(0.0, 0.03, joints.shape)
    start = _pose(np.random.default_rng(5), 4, 0.15)
    evidence = FitEvidence(noisy, K, (W, H), world, np.ones(world.shape[:-1]),
                           np.array([[1, JOINT_INDEX["right_wrist"], JOINT_INDEX["left_wrist"], 1.0]]))
    for iterations in (0, 5, 40):
        cfg = dataclasses.replace(EvidenceFitConfig(), iterations=iterations)
        _, report = fit_to_evidence(anny_body, start, transl, shape, evidence, cfg)
        assert set(report.after) >= {"reprojection", "world3d", "contact", "acceleration", "penetration"}
        assert report.objective_after <= report.objective_before + 1e-6
        if iterations == 0:
            assert report.objective_after == pytest.approx(report.objective_before)


def test_swapping_the_two_persons_swaps_the_fit(anny_body):
    rng = np.random.default_rng(6)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng)
    noisy = keypoints + np.concatenate([rng.normal(0.0, 8.0, keypoints[..., :2].shape),
                                        np.zeros(keypoints[..., 2:].shape)], -1).astype(np.float32)
    contacts = np.array([[0, JOINT_INDEX["right_wrist"], JOINT_INDEX["left_hand"], 1.0]])
    cfg = dataclasses.replace(EvidenceFitConfig(), iterations=30)
    a, _ = fit_to_evidence(anny_body, rot, transl, shape, FitEvidence(noisy, K, (W, H), contacts=contacts), cfg)
    swapped_contacts = contacts[:, [0, 2, 1, 3]]
    b, _ = fit_to_evidence(anny_body, rot[:, ::-1], transl[:, ::-1], shape[::-1],
                           FitEvidence(noisy[:, ::-1], K, (W, H), contacts=swapped_contacts), cfg)
    assert np.abs(a.joints - b.joints[:, ::-1]).max() < 1e-3


def test_bone_directions_ignore_size_global_orientation_and_position(anny_body):
    rng = np.random.default_rng(7)
    _, _, _, joints, _ = _scene(anny_body, rng, frames=1)
    j = torch.as_tensor(joints[0, 0])
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.linalg.det(q))
    moved = 1.3 * j @ torch.as_tensor(q.T, dtype=torch.float32) + torch.tensor([0.4, -2.0, 5.0])
    assert torch.allclose(bone_directions(j), bone_directions(moved), atol=1e-5)
    assert torch.allclose(bone_directions(j).norm(dim=-1), torch.ones(12), atol=1e-5)


def test_lowest_foot_measures_the_height_above_the_floor(anny_body):
    from socialmirror.inference.fit import EvidenceObjective, FitVariables
    rng = np.random.default_rng(8)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng, frames=2)
    start = FitVariables(torch.as_tensor(rot), torch.as_tensor(transl), torch.as_tensor(shape),
                         torch.tensor([0.0, -1.0, 0.0]), torch.zeros(()))
    objective = EvidenceObjective(anny_body, start, FitEvidence(keypoints, K, (W, H), up=(0.0, -1.0, 0.0)),
                                  EvidenceFitConfig())
    j = torch.as_tensor(joints)
    feet = [JOINT_INDEX[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    # Camera y points down: the floor 1 m below the camera centre is n = (0, -1, 0), d = 1.
    lowest = objective.lowest_foot(j, torch.tensor([0.0, -1.0, 0.0]), torch.tensor(1.0))
    exact = (1.0 - j[..., feet, 1]).amin(-1)
    assert torch.allclose(lowest, exact, atol=0.03)  # a soft minimum, within its 2 cm temperature


def test_the_shared_floor_pulls_a_person_back_onto_it(anny_body):
    rng = np.random.default_rng(9)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng, frames=3)
    lifted = transl.copy()
    lifted[:, 1, 1] -= 0.3  # person 1 floats 30 cm above the floor person 0 stands on
    cfg = dataclasses.replace(EvidenceFitConfig(), iterations=150, world_weight=0.0, fit_shape=False,
                              penetration_weight=0.0, limit_weight=0.0, ground_tilt_sigma=0.05)
    # No keypoints: only the priors and the floor act.
    blind = keypoints.copy()
    blind[..., 2] = 0.0
    fitted, report = fit_to_evidence(anny_body, rot, lifted, shape, FitEvidence(blind, K, (W, H), up=(0, -1, 0)),
                                     cfg)
    feet = [JOINT_INDEX[n] for n in ("left_foot", "right_foot")]
    gap = lambda j: np.abs(j[:, 0, feet, 1].max(-1) - j[:, 1, feet, 1].max(-1)).mean()  # noqa: E731
    start_joints = joints.copy()
    start_joints[:, 1] += lifted[:, 1, None] - transl[:, 1, None]
    assert gap(start_joints) > 0.25 and gap(fitted.joints) < 0.1
    assert report.objective_after <= report.objective_before


def test_place_in_depth_recovers_the_depth_of_a_body_of_known_size(anny_body):
    """Stage 1 with the body's true size and pose: each person moved along their pelvis ray to exactly the
    depth their keypoints' spread gives (one too far, one too near), whatever the networks said."""
    rng = np.random.default_rng(10)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng, frames=4)
    wrong = transl * np.float32([1.5, 0.7])[None, :, None]  # along the rays: the image positions stay
    start = FitVariables(torch.as_tensor(rot), torch.as_tensor(wrong), torch.as_tensor(shape),
                         torch.tensor([0.0, -1.0, 0.0]), torch.zeros(()))
    objective = EvidenceObjective(anny_body, start, FitEvidence(keypoints, K, (W, H)), EvidenceFitConfig())
    placed = place_in_depth(objective, start)
    np.testing.assert_allclose(placed.transl.numpy(), transl, atol=2e-3)
    # With a tolerance, only the part of the log-depth factor beyond it moves the person.
    partly = place_in_depth(objective, start, tolerance=0.1)
    expected = wrong * np.exp(np.log(np.float32([1 / 1.5, 1 / 0.7])) - np.float32([-0.1, 0.1]))[None, :, None]
    np.testing.assert_allclose(partly.transl.numpy(), expected, atol=2e-3)


def test_stated_heights_recover_the_depths_that_one_view_leaves_to_size(anny_body):
    """The size-depth confound: a tall person far away and a short one near, started as two average bodies
    on the same rays at the depths where average bodies span the same pixels (what the networks do). The
    image cannot tell them apart; with each person's standing height stated, the fit gives them bodies of
    that height and finds both true depths."""
    rng = np.random.default_rng(12)
    rot = _pose(rng, 4, 0.05)
    average = anny_body.default_shape(2)
    shape = anny_body.shape_of_height(average, torch.tensor([1.90, 1.45]))
    heights = anny_body.standing_height(shape).numpy()
    truth = np.zeros((4, 2, 3), dtype=np.float32)
    truth[:, 0] = (-0.5, 0.1, 4.4)
    truth[:, 1] = (0.5, 0.1, 3.4)
    with torch.no_grad():
        uv = project(anny_body.joints(torch.as_tensor(rot), shape, torch.as_tensor(truth)), torch.as_tensor(K))
    evidence = FitEvidence(np.concatenate([uv.numpy(), np.ones((4, 2, 24, 1), np.float32)], -1), K, (W, H))
    ratio = anny_body.standing_height(average).numpy() / heights
    confounded = truth * ratio[None, :, None].astype(np.float32)  # average bodies on the same rays
    cfg = dataclasses.replace(EvidenceFitConfig(), iterations=60, world_weight=0.0, depth_tolerance=0.0)
    unknown, _ = fit_to_evidence(anny_body, rot, confounded, average.numpy(), evidence, cfg)
    stated, report = fit_to_evidence(anny_body, rot, confounded, average.numpy(),
                                     dataclasses.replace(evidence, statures=heights), cfg)
    depth_error = (lambda fit: np.abs(fit.transl[..., 2] - truth[..., 2]).mean(0))  # noqa: E731
    assert depth_error(unknown).max() > 0.4  # the far tall person placed 0.8 m too near
    assert depth_error(stated).max() < 0.05
    fitted_heights = anny_body.standing_height(torch.as_tensor(stated.shape)).numpy()
    np.testing.assert_allclose(fitted_heights, heights, atol=0.02)
    assert "stature" in report.after
    # One height stated, the other not: the stated person's depth is found, the other's left to the image.
    half, _ = fit_to_evidence(anny_body, rot, confounded, average.numpy(),
                              dataclasses.replace(evidence, statures=np.array([heights[0], np.nan])), cfg)
    assert depth_error(half)[0] < 0.05 and depth_error(half)[1] > 0.2


def test_the_fit_brings_apart_two_people_the_networks_put_at_one_depth(anny_body):
    """The failure stage 1 exists for: both people started at one depth, overlapping, where the image shows
    one of them 0.9 m behind the other. The descent alone gets part of the way (the penetration term walls one
    body off behind the other); with stage 1 the fit finds the depth difference."""
    rng = np.random.default_rng(11)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng, frames=4, scale=0.05)
    truth = transl.copy()
    truth[:, 0] = (-0.25, 0.0, 3.2)
    truth[:, 1] = (0.25, 0.0, 4.1)
    with torch.no_grad():
        uv = project(anny_body.joints(torch.as_tensor(rot), torch.as_tensor(shape), torch.as_tensor(truth)),
                     torch.as_tensor(K)).numpy()
    evidence = FitEvidence(np.concatenate([uv, keypoints[..., 2:]], -1), K, (W, H))
    same_depth = truth * (3.65 / truth[..., 2:])  # on the same rays, both at 3.65 m: the bodies overlap
    depth_gap = {}
    for stage1 in (False, True):
        # The bodies' size is exact here: no size uncertainty for stage 1 to tolerate.
        cfg = dataclasses.replace(EvidenceFitConfig(), depth_from_keypoints=stage1, depth_tolerance=0.0,
                                  world_weight=0.0)
        fitted, _ = fit_to_evidence(anny_body, rot, same_depth, shape, evidence, cfg)
        depth_gap[stage1] = float(np.mean(fitted.transl[:, 1, 2] - fitted.transl[:, 0, 2]))
    assert depth_gap[True] == pytest.approx(0.9, abs=0.1)
    assert abs(depth_gap[True] - 0.9) < 0.5 * abs(depth_gap[False] - 0.9), depth_gap


def _close_pair_evidence(anny_body, frames: int):
    """Two people a hand apart (their spheres overlap) with noisy keypoints, MediaPipe-like 3D, two contacts and
    a floor: every term of the objective is active."""
    rng = np.random.default_rng(8)
    rot, transl, shape, joints, keypoints = _scene(anny_body, rng, frames=frames)
    transl[:, 1, 0] = -0.2
    noisy = keypoints.copy()
    noisy[..., :2] += rng.normal(0.0, 10.0, noisy[..., :2].shape)
    world = joints - joints[..., :1, :] + rng.normal(0.0, 0.03, joints.shape)
    contacts = np.array([[2, JOINT_INDEX["right_wrist"], JOINT_INDEX["left_wrist"], 1.0],
                         [frames - 2, JOINT_INDEX["left_hand"], JOINT_INDEX["right_hand"], 0.5]])
    evidence = FitEvidence(noisy, K, (W, H), world, np.ones(world.shape[:-1]), contacts, up=(0.0, -1.0, 0.0))
    return rot, transl, shape, evidence


def test_the_shares_of_spans_add_up_to_the_whole_objective_and_its_gradient(anny_body):
    from socialmirror.inference.fit import FrameSpan
    rot, transl, shape, evidence = _close_pair_evidence(anny_body, frames=9)
    r6 = matrix_to_6d(torch.as_tensor(rot)).requires_grad_(True)
    tr = torch.as_tensor(transl).requires_grad_(True)
    sh = torch.as_tensor(shape).requires_grad_(True)
    normal, offset = torch.tensor([0.05, -1.0, 0.0], requires_grad=True), torch.tensor(0.9, requires_grad=True)
    objective = EvidenceObjective(anny_body, FitVariables(sixd_to_matrix(r6).detach(), tr.detach(), sh.detach(),
                                                          normal.detach(), offset.detach()),
                                  evidence, EvidenceFitConfig())
    variables = (lambda frames=slice(None): FitVariables(sixd_to_matrix(r6[frames]), tr[frames], sh,  # noqa: E731
                                                         normal, offset))
    with torch.no_grad():
        pairs = objective.sphere_pairs(objective.joints(variables()))
    assert len(pairs) > 0  # the penetration term is in play
    whole = objective.terms(variables(), pairs)
    grads = torch.autograd.grad(sum(whole.values()), (r6, tr, sh, normal, offset))
    spans = FrameSpan.tiling(9, 4)
    assert [(s.start, s.stop) for s in spans] == [(0, 4), (4, 8), (8, 9)]
    shares = [objective.terms(variables(s.held), pairs, span=s) for s in spans]
    for name, value in whole.items():
        assert float(sum(share[name].detach() for share in shares)) == pytest.approx(float(value.detach()), rel=1e-5, abs=1e-7), name
    summed = torch.autograd.grad(sum(sum(share.values()) for share in shares), (r6, tr, sh, normal, offset))
    for g, s in zip(grads, summed):
        assert torch.allclose(g, s, rtol=1e-4, atol=1e-6)


def test_a_fit_in_short_spans_is_the_fit_of_the_whole_sequence(anny_body):
    rot, transl, shape, evidence = _close_pair_evidence(anny_body, frames=9)
    whole, report = fit_to_evidence(anny_body, rot, transl, shape, evidence, EvidenceFitConfig(iterations=20))
    spans, span_report = fit_to_evidence(anny_body, rot, transl, shape, evidence,
                                         EvidenceFitConfig(iterations=20, span_frames=2))
    assert report.objective_after < report.objective_before
    assert span_report.objective_after == pytest.approx(report.objective_after, rel=1e-3)
    assert np.abs(spans.joints - whole.joints).max() < 1e-3  # metres


def test_the_floors_depth_ratio_moves_the_pair_towards_where_their_feet_stand(anny_body):
    """A tall person far away and a short one near, feet on one floor 1.5 m below a level camera, started as
    average bodies on the same rays (the image unchanged, the depths wrong): stage 2 moves the pair's log depth
    ratio the asked share of the way to the floor's, keeps their mean log depth, and leaves the image as it was."""
    rng = np.random.default_rng(13)
    rot = _pose(rng, 4, 0.03)
    average = anny_body.default_shape(2)
    shape = anny_body.shape_of_height(average, torch.tensor([1.90, 1.45]))
    truth = np.zeros((4, 2, 3), dtype=np.float32)
    truth[:, 0] = (-0.5, 0.0, 4.4)
    truth[:, 1] = (0.5, 0.0, 3.4)
    with torch.no_grad():
        joints = anny_body.joints(torch.as_tensor(rot), shape, torch.as_tensor(truth))
        feet = [JOINT_INDEX[n] for n in FOOT_JOINTS]
        lowest = joints[:, :, feet, 1].amax(-1).median(0).values  # y down: the lowest foot
        truth[..., 1] += (1.5 - lowest.numpy())[None]  # both people's lowest foot joints on the floor
        uv = project(anny_body.joints(torch.as_tensor(rot), shape, torch.as_tensor(truth)), torch.as_tensor(K))
    kp = np.concatenate([uv.numpy(), np.ones((4, 2, 24, 1), np.float32)], -1)
    evidence = FitEvidence(kp, K, (W, H), up=(0.0, -1.0, 0.0))
    ratio = anny_body.standing_height(average).numpy() / anny_body.standing_height(shape).numpy()
    start = FitVariables(torch.as_tensor(rot), torch.as_tensor(truth * ratio[None, :, None].astype(np.float32)),
                         average, torch.tensor([0.0, -1.0, 0.0]), torch.zeros(()))
    heights = torch.as_tensor([120.0, 120.0])
    log_ratio = (lambda v: float(torch.log(v.transl[:, 0, 2].median() / v.transl[:, 1, 2].median())))  # noqa: E731
    true, before = math.log(4.4 / 3.4), log_ratio(start)
    assert abs(before - true) > 0.1
    full = toward_floor_ratio(anny_body, start, evidence, heights, 1.0)
    assert log_ratio(full) == pytest.approx(true, abs=0.02)
    half = toward_floor_ratio(anny_body, start, evidence, heights, 0.5)
    assert log_ratio(half) == pytest.approx(before + 0.5 * (log_ratio(full) - before), abs=0.01)
    mean_log_depth = (lambda v: float(torch.log(v.transl[..., 2].median(0).values).mean()))  # noqa: E731
    assert mean_log_depth(full) == pytest.approx(mean_log_depth(start), abs=0.01)
    with torch.no_grad():
        moved = project(anny_body.joints(full.rotmats, full.shape, full.transl), torch.as_tensor(K))
    assert float((moved - uv).norm(dim=-1).mean()) < 2.0  # pixels
