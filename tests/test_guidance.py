"""Guidance terms: each gradient step reduces its own error on a toy two-person case."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from socialmirror import metrics
from socialmirror.body.motion import MotionRepresentation
from socialmirror.body.skeleton import JOINT_INDEX
from socialmirror.diffusion.guidance import (
    ContactGuidance,
    ContactTargets,
    GeometryGuidance,
    MotionDecoder,
    PenetrationGuidance,
    ReprojectionGuidance,
)
from socialmirror.diffusion.sampler import DDIMSampler, GuidanceContext, SamplerConfig
from socialmirror.diffusion.schedule import InitialDistributionDiffusion
from socialmirror.geometry.camera import intrinsics_matrix, project, transl_to_crop_cam
from socialmirror.geometry.rotations import axis_angle_to_matrix
from socialmirror.losses.spheres import sphere_overlap, sphere_penetration_mm

K = intrinsics_matrix(1000.0, 1000, 1000)
LENGTH = 4


def make_pair(body, pelvis_b, yaw_b: float = math.pi, pose_noise: float = 0.0, seed: int = 0):
    """x (1, 2, L, D) raw: person a at (0, 0, 4) facing the camera, person b at pelvis_b (relative to a)
    turned by yaw_b; plus the decoder pieces (boxes, rest joints)."""
    rep = MotionRepresentation(body.shape_dim)
    g = torch.Generator().manual_seed(seed)
    aa = torch.randn(2, 24, 3, generator=g) * pose_noise
    aa[:, 0] = 0.0
    aa[0, 0, 0] = math.pi  # body y-up -> camera y-down: rotate about x so the person stands upright
    aa[1, 0] = torch.tensor([0.0, yaw_b, 0.0])
    rot = axis_angle_to_matrix(aa)
    rot[1, 0] = rot[0, 0] @ rot[1, 0]
    rot = rot[:, None].expand(2, LENGTH, 24, 3, 3)
    transl = torch.tensor([[0.0, 0.0, 4.0], [0.0, 0.0, 4.0]]) + torch.tensor([[0.0, 0.0, 0.0], list(pelvis_b)])
    transl = transl[:, None].expand(2, LENGTH, 3)
    boxes = torch.cat([project(transl, K), torch.full((2, LENGTH, 1), 450.0)], -1)
    shape = body.default_shape(2, LENGTH)
    x = rep.pack(rot, shape, transl_to_crop_cam(transl, boxes, K))[None]
    rest = body.rest_joints(body.default_shape(2))[None]
    return x, MotionDecoder(rep, rest, boxes[None], K)


def guide(term, x, extras, step_size: float, iterations: int):
    sampler = DDIMSampler(InitialDistributionDiffusion(),
                          SamplerConfig(guidance_step_size=step_size, guidance_iterations=iterations))
    context = GuidanceContext(t=torch.zeros(1, dtype=torch.long), step=0, num_steps=1, x_t=x, x_init=x,
                              extras=extras)
    return sampler.guide(x, [term], context), context


def test_decoder_matches_body_model(anny_body):
    x, decoder = make_pair(anny_body, (0.5, 0.0, 0.0), pose_noise=0.3)
    decoded = decoder(x)
    params = decoder.representation.to_world(x[0], decoder.boxes[0], K)
    ref = anny_body.joints(params.rotmats, anny_body.default_shape(2, 1), params.transl)
    torch.testing.assert_close(decoded.joints[0], ref, atol=1e-5, rtol=0)
    assert decoder(x) is decoded  # memoised for the terms of one iteration


def test_contact_guidance_brings_hands_together(anny_body):
    x, decoder = make_pair(anny_body, (1.6, 0.0, 0.0), yaw_b=0.0)
    ia, ib = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]
    # person a's left wrist (on its +x side, the image's left as it faces the camera) ... b stands to +x
    contacts = ContactTargets.from_rows([(0, f, ia, ib, 1.0) for f in range(1, LENGTH)])
    term = ContactGuidance(weight=1.0)

    def gap():
        j = decoder(x_now).joints[0]
        return (j[0, :, ia] - j[1, :, ib]).norm(dim=-1)

    x_now = x
    before = gap()
    x_now, _ = guide(term, x, {"decoder": decoder, "contacts": contacts}, step_size=0.25, iterations=30)
    after = gap()
    assert before[1:].min() > 0.3
    assert (after[1:] < before[1:] - 0.2).all()
    torch.testing.assert_close(x_now[:, :, 0], x[:, :, 0])  # frame 0 has no contact: untouched
    # Contacts with an unknown joint name are refused.
    with pytest.raises(ValueError):
        ContactTargets.joint_index("left_hand")


def test_penetration_proxy_pushes_bodies_apart_and_metric_drops(anny_body):
    x, decoder = make_pair(anny_body, (0.0, 0.0, 0.1), pose_noise=0.1)
    joints = decoder(x).joints[0]
    proxy_before = float(sphere_penetration_mm(joints[0, 0], joints[1, 0]))
    x_new, _ = guide(PenetrationGuidance(weight=1.0), x, {"decoder": decoder}, step_size=0.5, iterations=20)
    joints_new = decoder(x_new).joints[0]
    proxy_after = float(sphere_penetration_mm(joints_new[0, 0], joints_new[1, 0]))
    assert proxy_after < 0.3 * proxy_before

    def metric(x_):
        params = decoder.representation.to_world(x_[0, :, 0], decoder.boxes[0, :, 0], K)
        verts = anny_body(params.rotmats, None, params.transl).vertices.detach().numpy()
        faces = anny_body.faces.numpy()
        return metrics.penetration(verts[0], faces, verts[1], faces)

    pen_before, pen_after = metric(x), metric(x_new)
    assert pen_before > 0.5
    assert pen_after < 0.5 * pen_before


def test_penetration_proxy_zero_when_apart_and_symmetric():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(24, 3, generator=g) * 0.3
    b = a + torch.tensor([3.0, 0.0, 0.0])
    assert float(sphere_overlap(a, b).sum()) == 0.0
    c = a + torch.tensor([0.1, 0.0, 0.0])
    assert float(sphere_penetration_mm(a, c)) == pytest.approx(float(sphere_penetration_mm(c, a)), rel=1e-6)


def test_reprojection_guidance_moves_joints_toward_keypoints(anny_body):
    target, decoder = make_pair(anny_body, (0.8, 0.0, 0.0), pose_noise=0.2, seed=1)
    start, _ = make_pair(anny_body, (0.8, 0.0, 0.0), pose_noise=0.2, seed=2)
    uv = project(decoder(target).joints, K)
    confidence = torch.ones(uv.shape[:-1] + (1,))
    confidence[..., JOINT_INDEX["spine1"], :] = 0.0  # a missing joint pulls nothing
    keypoints = torch.cat([uv, confidence], -1)
    # An outlier keypoint far off: Geman-McClure keeps it from dominating.
    keypoints[0, 0, :, JOINT_INDEX["head"], :2] += 2000.0

    def error(x_):
        px = project(decoder(x_).joints, K)
        err = (px - keypoints[..., :2]).norm(dim=-1) * keypoints[..., 2]
        err[..., JOINT_INDEX["head"]] = 0.0
        return float(err.sum() / (keypoints[..., 2].sum()))

    term = ReprojectionGuidance(weight=1.0)
    x_new, _ = guide(term, start, {"decoder": decoder, "keypoints2d": keypoints}, step_size=3.0, iterations=40)
    assert error(x_new) < 0.5 * error(start)
    assert torch.isfinite(x_new).all()


def test_geometry_guidance_moves_joints_toward_targets(anny_body):
    target, decoder = make_pair(anny_body, (0.8, 0.0, 0.0), pose_noise=0.2, seed=1)
    start, _ = make_pair(anny_body, (0.8, 0.0, 0.0), pose_noise=0.2, seed=2)
    goal = decoder(target).joints.detach()
    mask = torch.ones(1, 2, LENGTH)
    mask[0, 1, -1] = 0.0  # a masked person-frame is not guided

    def error(x_):
        return (decoder(x_).joints - goal).norm(dim=-1).mean(-1)[0]  # (2, L)

    before = error(start)
    x_new, _ = guide(GeometryGuidance(weight=1.0), start,
                     {"decoder": decoder, "geometry_joints": goal, "frame_mask": mask},
                     step_size=0.5, iterations=30)
    after = error(x_new)
    assert (after[mask[0] > 0] < 0.5 * before[mask[0] > 0]).all()
    torch.testing.assert_close(x_new[0, 1, -1], start[0, 1, -1])


def test_disabled_or_zero_weight_terms_leave_x0_unchanged(anny_body):
    x, decoder = make_pair(anny_body, (0.05, 0.0, 0.18))
    for term in (PenetrationGuidance(weight=0.0), PenetrationGuidance(weight=1.0, enabled=False)):
        x_new, _ = guide(term, x, {"decoder": decoder}, step_size=1.0, iterations=3)
        assert torch.equal(x_new, x)
    assert np.isfinite(float(sphere_penetration_mm(decoder(x).joints[0, 0, 0], decoder(x).joints[0, 1, 0])))


def test_penetration_loss_equals_dense_sum_over_sphere_pairs(anny_body):
    x, decoder = make_pair(anny_body, (0.1, 0.0, 0.15), pose_noise=0.2)
    context = GuidanceContext(t=torch.zeros(1, dtype=torch.long), step=0, num_steps=1, x_t=x, x_init=x,
                              extras={"decoder": decoder})
    joints = decoder(x).joints
    overlap = sphere_overlap(joints[:, 0], joints[:, 1])
    pairs = (overlap > 0).sum(dim=(-1, -2)).clamp_min(1)  # (1, L) overlapping pairs per frame
    dense = (0.5 * overlap.square().sum(dim=(-1, -2)) / pairs).sum(-1)
    sparse = PenetrationGuidance()(x, context)
    assert float(dense) > 0
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-9)


def test_penetration_proxy_ranks_posed_pairs_like_the_metric(anny_body):
    """The proxy is not the metric's number, but it orders configurations alike (and is 0 when apart)."""
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(0)
    faces = anny_body.faces.numpy()
    proxy, metric = [], []
    for k, depth in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.8]):
        aa = torch.randn(2, 24, 3, generator=g) * 0.25
        aa[:, 0] = 0.0
        aa[1, 0, 1] = math.pi  # face each other
        out = anny_body(axis_angle_to_matrix(aa), None, torch.tensor([[0.0, 0.0, 0.0], [0.05 * k, 0.0, depth]]))
        metric.append(metrics.penetration(out.vertices[0].numpy(), faces, out.vertices[1].numpy(), faces))
        proxy.append(float(sphere_penetration_mm(out.joints[0], out.joints[1])))
    assert spearmanr(proxy, metric)[0] > 0.7
    assert proxy[-1] == 0.0 and metric[-1] == 0.0


def test_contact_guidance_without_contacts_is_a_no_op(anny_body):
    x, decoder = make_pair(anny_body, (1.6, 0.0, 0.0))
    for contacts in (None, ContactTargets.empty()):
        x_new, _ = guide(ContactGuidance(), x, {"decoder": decoder, "contacts": contacts}, 1.0, 2)
        assert torch.equal(x_new, x)
