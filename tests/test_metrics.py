"""Tests of socialmirror.metrics against hand computations (definitions: docs/metrics.md)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from socialmirror import metrics as M
from socialmirror.body.skeleton import SMPL24_NAMES

JOINT_METRICS = [M.mpjpe, M.pa_mpjpe, M.r_mpjpe, M.g_mpjpe, M.interaction_error, M.accel_error]


def _pair(T=6, seed=0):
    """A ground-truth pair (T, 2, 24, 3) and a noisy prediction of it."""
    rng = np.random.default_rng(seed)
    g = rng.normal(scale=0.3, size=(T, 2, 24, 3))
    g[:, 1] += np.array([0.8, 0.0, 0.3])
    p = g + rng.normal(scale=0.03, size=g.shape)
    return p, g


def _rot(seed):
    return Rotation.random(random_state=seed).as_matrix()


# ---------------------------------------------------------------------------------------------------------
# joint metrics
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", JOINT_METRICS, ids=lambda f: f.__name__)
def test_identical_gives_zero_and_float(metric):
    _, g = _pair()
    v = metric(g.copy(), g)
    assert isinstance(v, float)
    assert v == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("metric", JOINT_METRICS, ids=lambda f: f.__name__)
def test_inputs_untouched_and_torch_accepted(metric):
    p, g = _pair()
    p0, g0 = p.copy(), g.copy()
    v = metric(p, g)
    assert np.array_equal(p, p0) and np.array_equal(g, g0)
    assert metric(torch.from_numpy(p), torch.from_numpy(g)) == pytest.approx(v, rel=1e-9)
    assert metric(p.astype(np.float32), g.astype(np.float32)) == pytest.approx(v, rel=1e-4)


def test_constant_translation_of_both_people():
    _, g = _pair()
    p = g + np.array([0.3, 0.1, -0.2])
    for metric in JOINT_METRICS:
        assert metric(p, g) == pytest.approx(0.0, abs=1e-9), metric.__name__


def test_time_varying_translation_only_g_mpjpe_sees_it():
    _, g = _pair(T=4)
    offsets = np.array([[0.01 * t, 0.0, 0.0] for t in range(4)])  # mean 0.015, deviations 15, 5, 5, 15 mm
    p = g + offsets[:, None, None, :]
    assert M.mpjpe(p, g) == pytest.approx(0.0, abs=1e-9)
    assert M.r_mpjpe(p, g) == pytest.approx(0.0, abs=1e-9)
    assert M.interaction_error(p, g) == pytest.approx(0.0, abs=1e-9)
    assert M.g_mpjpe(p, g) == pytest.approx(10.0, abs=1e-9)
    # the offset is linear in time: no acceleration either
    assert M.accel_error(p, g) == pytest.approx(0.0, abs=1e-9)


def test_moving_one_person():
    _, g = _pair(T=3)
    p = g.copy()
    p[:, 1] += np.array([0.0, 0.0, 0.1])
    assert M.mpjpe(p, g) == pytest.approx(0.0, abs=1e-9)
    assert M.pa_mpjpe(p, g) == pytest.approx(0.0, abs=1e-9)
    # one shared offset of -5 cm restores the midpoint: each person stays 5 cm off
    assert M.r_mpjpe(p, g) == pytest.approx(50.0, abs=1e-9)
    assert M.g_mpjpe(p, g) == pytest.approx(50.0, abs=1e-9)
    assert M.interaction_error(p, g) > 1.0


def test_interaction_error_hand_case():
    names = ("left_hip", "right_hip")
    g = np.zeros((1, 2, 2, 3))
    g[0, 0] = [[0, 0, 0], [1, 0, 0]]
    g[0, 1] = [[0, 1, 0], [1, 1, 0]]
    p = g.copy()
    p[0, 1, :, 1] += 1.0  # person B one metre further away
    # gt distances 1, sqrt2, sqrt2, 1; pred 2, sqrt5, sqrt5, 2
    want = 1000.0 * (2 * 1.0 + 2 * (math.sqrt(5) - math.sqrt(2))) / 4
    assert M.interaction_error(p, g, joint_names=names) == pytest.approx(want, rel=1e-12)


def test_interaction_error_rigid_motion_of_the_pair():
    _, g = _pair()
    R, t = _rot(1), np.array([1.0, -2.0, 0.5])
    p = g @ R.T + t
    assert M.interaction_error(p, g) == pytest.approx(0.0, abs=1e-8)
    q = p.copy()
    q[:, 0] = q[:, 0] @ _rot(2).T  # rotate only person A (about the origin): placement changes
    assert M.interaction_error(q, g) > 10.0


def test_pa_mpjpe_similarity_invariance():
    p, g = _pair()
    T = g.shape[0]
    q = np.empty_like(g)
    for t in range(T):
        for k in range(2):
            s = 0.5 + t * 0.2 + k * 0.1
            q[t, k] = s * g[t, k] @ _rot(10 * t + k).T + np.array([t, -k, 0.3])
    assert M.pa_mpjpe(q, g) == pytest.approx(0.0, abs=1e-7)
    assert M.mpjpe(q, g) > 10.0
    assert M.pa_mpjpe(2.0 * g, g) == pytest.approx(0.0, abs=1e-9)


def _pa_reference(p, g):
    """Independent PA: scipy's proper-rotation fit of the centred points, then the optimal scale."""
    errs = []
    for t in range(p.shape[0]):
        for k in range(2):
            x = p[t, k] - p[t, k].mean(0)
            y = g[t, k] - g[t, k].mean(0)
            rot, _ = Rotation.align_vectors(y, x)
            xr = rot.apply(x)
            s = (xr * y).sum() / (x * x).sum()
            errs.append(np.linalg.norm(s * xr - y, axis=1))
    return 1000.0 * np.mean(errs)


def test_pa_mpjpe_matches_independent_fit_and_excludes_reflection():
    p, g = _pair(seed=3)
    assert M.pa_mpjpe(p, g) == pytest.approx(_pa_reference(p, g), rel=1e-9)
    mirrored = g * np.array([-1.0, 1.0, 1.0])  # a reflection is not a similarity transform
    v = M.pa_mpjpe(mirrored, g)
    assert v > 10.0
    assert v == pytest.approx(_pa_reference(mirrored, g), rel=1e-9)


def test_accel_constant_velocity_difference_is_zero():
    _, g = _pair(T=7)
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 24, 3)), rng.normal(size=(2, 24, 3))
    t = np.arange(7)[:, None, None, None]
    p = g + 0.01 * (a + b * t)  # per-joint drift linear in time
    assert M.accel_error(p, g) == pytest.approx(0.0, abs=1e-8)
    assert M.mpjpe(p, g) > 1.0


def test_accel_single_frame_spike():
    _, g = _pair(T=5)
    p = g.copy()
    p[2, 1, SMPL24_NAMES.index("left_wrist")] += np.array([0.0, 0.006, 0.008])  # |delta| = 1 cm
    # accelerations of that joint differ by +d, -2d, +d at the interior frames 1, 2, 3
    want = 1000.0 * (0.01 + 0.02 + 0.01) / (3 * 2 * 24)
    assert M.accel_error(p, g) == pytest.approx(want, rel=1e-9)


def test_accel_needs_three_frames():
    _, g = _pair(T=2)
    with pytest.raises(ValueError, match="3 frames"):
        M.accel_error(g, g)


def test_joint_subset_hips_stand_in_for_the_pelvis():
    _, g = _pair(T=2)
    names = ("left_hip", "right_hip", "left_knee")
    idx = [SMPL24_NAMES.index(n) for n in names]
    gs = g[:, :, idx]
    ps = gs.copy()
    ps[:, :, 0] += np.array([0.02, 0.0, 0.0])  # the hip midpoint moves 1 cm: every joint is 1 cm off
    assert M.mpjpe(ps, gs, joint_names=names) == pytest.approx(10.0, abs=1e-9)
    # a per-person translation is removed by the hip-midpoint alignment
    shifted = gs + np.array([0.1, 0.2, 0.3]) * np.array([1.0, -1.0])[None, :, None, None]
    assert M.mpjpe(shifted, gs, joint_names=names) == pytest.approx(0.0, abs=1e-9)
    assert M.r_mpjpe(gs + 0.5, gs, joint_names=names) == pytest.approx(0.0, abs=1e-9)
    # with the pelvis present it, not the hips, is the root
    names_p = ("pelvis", "left_hip", "right_hip")
    idx_p = [SMPL24_NAMES.index(n) for n in names_p]
    gp = g[:, :, idx_p]
    pp = gp.copy()
    pp[:, :, 1] += np.array([0.02, 0.0, 0.0])
    assert M.mpjpe(pp, gp, joint_names=names_p) == pytest.approx(20.0 / 3.0, abs=1e-9)
    # the subset gives the same numbers as the full skeleton on those joints where the pelvis is in both
    full_p, full_g = _pair(T=4, seed=8)
    names_q = ("pelvis", "left_wrist", "right_ankle", "head")
    idx_q = [SMPL24_NAMES.index(n) for n in names_q]
    a = M.r_mpjpe(full_p[:, :, idx_q], full_g[:, :, idx_q], joint_names=names_q)
    manual = full_p[:, :, idx_q] + (full_g[:, :, 0].mean(1) - full_p[:, :, 0].mean(1))[:, None, None]
    assert a == pytest.approx(1000 * np.linalg.norm(manual - full_g[:, :, idx_q], axis=-1).mean(), rel=1e-12)


def test_joint_names_errors():
    _, g = _pair(T=3)
    with pytest.raises(ValueError, match="pelvis, both hips or a torso joint"):
        M.mpjpe(g[:, :, [4, 5]], g[:, :, [4, 5]], joint_names=("left_knee", "right_knee"))
    with pytest.raises(ValueError, match="joint_names"):
        M.mpjpe(g[:, :, :5], g[:, :, :5])
    with pytest.raises(ValueError, match="names"):
        M.mpjpe(g[:, :, :2], g[:, :, :2], joint_names=("pelvis",))
    with pytest.raises(ValueError, match="SMPL-24"):
        M.mpjpe(g[:, :, :2], g[:, :, :2], joint_names=("pelvis", "tail"))


@pytest.mark.parametrize("metric", JOINT_METRICS, ids=lambda f: f.__name__)
def test_shape_mismatch_is_a_clear_error(metric):
    _, g = _pair(T=4)
    with pytest.raises(ValueError, match=r"\(T, 2, J, 3\)"):
        metric(g[:3], g)
    with pytest.raises(ValueError, match=r"\(T, 2, J, 3\)"):
        metric(g[:, :1], g[:, :1])
    with pytest.raises(ValueError, match=r"\(T, 2, J, 3\)"):
        metric(g[0], g[0])


# ---------------------------------------------------------------------------------------------------------
# VPE
# ---------------------------------------------------------------------------------------------------------

def test_vertex_error_hand_case():
    rng = np.random.default_rng(4)
    gv = rng.normal(size=(2, 2, 4, 3))
    gj = rng.normal(size=(2, 2, 24, 3))
    # translating a person's mesh together with its joints costs nothing
    shift = rng.normal(size=(2, 2, 1, 3))
    assert M.vertex_error(gv + shift, gv, gj + shift, gj) == pytest.approx(0.0, abs=1e-9)
    # one vertex 4 cm off in each frame: mean over 2 persons x 4 vertices = 5 mm
    pv = gv.copy()
    pv[:, 0, 1] += np.array([0.0, 0.04, 0.0])
    assert M.vertex_error(pv, gv, gj, gj) == pytest.approx(5.0, abs=1e-9)
    # a predicted pelvis 3 cm off (mesh not moved) shifts every aligned vertex by 3 cm
    pj = gj.copy()
    pj[:, :, 0] += np.array([0.03, 0.0, 0.0])
    assert M.vertex_error(gv, gv, pj, gj) == pytest.approx(30.0, abs=1e-9)
    # one frame (2, V, 3) works too
    assert M.vertex_error(pv[0], gv[0], gj[0], gj[0]) == pytest.approx(5.0, abs=1e-9)


def test_vertex_error_topology_mismatch():
    gv = np.zeros((1, 2, 5, 3))
    gj = np.zeros((1, 2, 24, 3))
    with pytest.raises(ValueError, match="topology"):
        M.vertex_error(gv[:, :, :4], gv, gj, gj)


# ---------------------------------------------------------------------------------------------------------
# penetration
# ---------------------------------------------------------------------------------------------------------

def _sphere(radius, centre, subdivisions=4):
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(m.vertices) + np.asarray(centre, dtype=float), np.asarray(m.faces)


def _analytic_lens_depth(r_a, r_b, d):
    """Mean over sphere B's surface of max(r_a - |x - c_a|, 0), B of radius r_b at distance d from A's
    centre: with s = |x - c_a|, area is uniform in s^2, so the mean is
    1/(2 d r_b) * integral_{|d - r_b|}^{min(r_a, d + r_b)} (r_a - s) s ds."""
    lo, hi = abs(d - r_b), min(r_a, d + r_b)
    if hi <= lo:
        return 0.0
    integral = r_a * (hi ** 2 - lo ** 2) / 2 - (hi ** 3 - lo ** 3) / 3
    return integral / (2 * d * r_b)


def test_penetration_overlapping_spheres_matches_the_analytic_depth():
    va, fa = _sphere(0.2, (0, 0, 0))
    vb, fb = _sphere(0.2, (0.3, 0, 0))
    want_mm = 1000 * _analytic_lens_depth(0.2, 0.2, 0.3)  # 5.556 mm for both spheres alike
    assert want_mm == pytest.approx(5.5556, abs=1e-3)
    got = M.penetration(va, fa, vb, fb)
    assert got == pytest.approx(want_mm, rel=0.10)
    # the same mean computed on the actual vertices
    depth_b = np.maximum(0.2 - np.linalg.norm(vb, axis=1), 0)
    depth_a = np.maximum(0.2 - np.linalg.norm(va - [0.3, 0, 0], axis=1), 0)
    discrete = 1000 * (depth_a.sum() + depth_b.sum()) / (len(va) + len(vb))
    assert got == pytest.approx(discrete, rel=0.05)
    # symmetric in a and b
    assert M.penetration(vb, fb, va, fa) == pytest.approx(got, rel=1e-12)


def test_penetration_unequal_spheres_and_nested():
    va, fa = _sphere(0.25, (0, 0, 0))
    vb, fb = _sphere(0.15, (0, 0.3, 0))
    depth_b = 1000 * _analytic_lens_depth(0.25, 0.15, 0.3)  # B's surface inside A
    depth_a = 1000 * _analytic_lens_depth(0.15, 0.25, 0.3)  # A's surface inside B
    want = (depth_a * len(va) + depth_b * len(vb)) / (len(va) + len(vb))
    assert M.penetration(va, fa, vb, fb) == pytest.approx(want, rel=0.10)
    # a small sphere fully inside a big one: its vertices are 0.25 m deep, the big one's are outside it
    vbig, fbig = _sphere(0.3, (0, 0, 0))
    vsmall, fsmall = _sphere(0.05, (0, 0, 0), subdivisions=3)
    want = 1000 * 0.25 * len(vsmall) / (len(vbig) + len(vsmall))
    assert M.penetration(vbig, fbig, vsmall, fsmall) == pytest.approx(want, rel=0.02)


def test_penetration_apart_is_exactly_zero():
    va, fa = _sphere(0.2, (0, 0, 0))
    assert M.penetration(va, fa, va + 1.0, fa) == 0.0
    # close enough that each sphere's vertices fall in the other's enlarged grid box, yet not touching
    vb = va + np.array([0.405, 0.0, 0.0])
    assert M.penetration(va, fa, vb, fa) == 0.0


def test_penetration_open_mesh_and_any_topology():
    va, fa = _sphere(0.2, (0, 0, 0))
    vb, fb = _sphere(0.2, (0.3, 0, 0))
    closed = M.penetration(va, fa, vb, fb)
    rng = np.random.default_rng(0)
    keep = np.ones(len(fa), dtype=bool)
    keep[rng.choice(len(fa), 12, replace=False)] = False  # punch 12 holes into each sphere
    opened = M.penetration(va, fa[keep], vb, fb[keep])
    assert opened == pytest.approx(closed, rel=0.02)
    # some faces wound the wrong way
    flipped_a, flipped_b = fa.copy(), fb.copy()
    flipped_a[~keep] = flipped_a[~keep][:, ::-1]
    flipped_b[~keep] = flipped_b[~keep][:, ::-1]
    assert M.penetration(va, flipped_a, vb, flipped_b) == pytest.approx(closed, rel=0.02)
    # a self-intersecting mesh (two overlapping spheres as one mesh): the overlap is inside, not a "hole"
    vu, fu = np.concatenate([va, vb]), np.concatenate([fa, fb + len(va)])
    sdf_u, lo_u, step_u = M.signed_distance_grid(vu, fu, res=16)
    ijk16 = np.stack(np.meshgrid(*[np.arange(16)] * 3, indexing="ij"), -1)
    xu = lo_u + step_u * ijk16
    d_a, d_b = np.linalg.norm(xu, axis=-1) - 0.2, np.linalg.norm(xu - [0.3, 0, 0], axis=-1) - 0.2
    exact_u = np.minimum(d_a, d_b)
    clear_u = np.abs(exact_u) > 0.005
    assert np.array_equal(sdf_u[clear_u] < 0, exact_u[clear_u] < 0)
    lens = (d_a < -0.005) & (d_b < -0.005)  # inside both spheres: ray parity alone would call it outside
    assert lens.sum() >= 20 and (sdf_u[lens] < 0).all()
    # a torus (genus 1, non-convex): the signed grid follows the analytic signed distance
    tor = trimesh.creation.torus(0.3, 0.1, major_sections=48, minor_sections=32)
    sdf, lo, step = M.signed_distance_grid(tor.vertices, tor.faces, res=24)
    ijk = np.stack(np.meshgrid(*[np.arange(24)] * 3, indexing="ij"), -1)
    x = lo + step * ijk
    exact = np.hypot(np.hypot(x[..., 0], x[..., 1]) - 0.3, x[..., 2]) - 0.1
    clear = np.abs(exact) > 0.005
    assert np.array_equal(sdf[clear] < 0, exact[clear] < 0)
    assert np.abs(sdf - exact).max() < 0.004


def test_penetration_lazy_lookup_equals_the_full_grid():
    va, fa = _sphere(0.2, (0, 0, 0), subdivisions=3)
    vb, fb = _sphere(0.15, (0.2, 0.1, 0), subdivisions=3)

    res = 16

    def depth_sum(v, f, others):
        sdf, lo, step = M.signed_distance_grid(v, f, res=res)
        coords = ((others - lo) / step).T
        inside_box = np.all((coords >= 0) & (coords <= res - 1), axis=0)
        vals = map_coordinates(sdf, coords, order=1, mode="nearest")
        return np.where(inside_box, np.maximum(-vals, 0), 0).sum()

    want = 1000 * (depth_sum(va, fa, vb) + depth_sum(vb, fb, va)) / (len(va) + len(vb))
    assert want > 1.0
    assert M.penetration(va, fa, vb, fb, res=res) == pytest.approx(want, rel=1e-9)


def test_penetration_sequence_both_forms():
    va, fa = _sphere(0.2, (0, 0, 0), subdivisions=3)
    offsets = [0.25, 0.3, 1.0]
    frames = [M.penetration(va, fa, va + [d, 0, 0], fa, res=16) for d in offsets]
    seq = np.stack([np.stack([va, va + [d, 0, 0]]) for d in offsets])  # (T, 2, V, 3)
    want = float(np.mean(frames))
    assert M.penetration_sequence(seq, fa, res=16) == pytest.approx(want, rel=1e-12)
    assert M.penetration_sequence(seq[:, 0], fa, seq[:, 1], fa, res=16) == pytest.approx(want, rel=1e-12)
    assert M.penetration_sequence(seq, (fa, fa), res=16) == pytest.approx(want, rel=1e-12)


def test_penetration_input_errors():
    va, fa = _sphere(0.2, (0, 0, 0), subdivisions=1)
    with pytest.raises(ValueError, match="verts_a"):
        M.penetration(va[:, :2], fa, va, fa)
    with pytest.raises(ValueError, match="faces_b"):
        M.penetration(va, fa, va[:10], fa)


def test_upper_body_only_aligns_on_the_torso():
    """Bütepage-like joints (no pelvis, no hips): spine3 is the root; a constant shift gives MPJPE 0 and
    moving one wrist by 3 cm gives 3 cm / 3 joints = 10 mm."""
    _, g = _pair(T=4)
    names = ("spine3", "head", "right_wrist")
    idx = [SMPL24_NAMES.index(n) for n in names]
    sub = g[:, :, idx]
    assert M.mpjpe(sub + 0.4, sub, joint_names=names) == pytest.approx(0.0, abs=1e-9)
    moved = sub.copy()
    moved[:, :, 2, 0] += 0.03
    assert M.mpjpe(moved, sub, joint_names=names) == pytest.approx(10.0, rel=1e-9)


def test_placement_errors_split_the_pair_vector_error_by_hand():
    """Ground truth: pelvises at (-0.5, 0, 4) and (0.5, 0, 4), so the ray through their midpoint is +z, the
    image's vertical +y, the lateral axis x. The prediction moves person B 0.3 m deeper, 0.1 m lower (+y) and
    0.2 m to the side: those are the depth, vertical and lateral parts; B's distance from the camera grows by
    |(0.7, 0.1, 4.3)| - |(0.5, 0, 4)|, A's not at all."""
    from socialmirror.metrics import placement_errors
    names = ["pelvis", "head"]
    gt = np.zeros((3, 2, 2, 3))
    gt[:, 0, :, :] = [-0.5, 0.0, 4.0]
    gt[:, 1, :, :] = [0.5, 0.0, 4.0]
    gt[:, :, 1, 1] -= 0.6  # heads above the pelvises
    pred = gt.copy()
    pred[:, 1] += [0.2, 0.1, 0.3]
    out = placement_errors(pred, gt, joint_names=names)
    assert out["depth"] == pytest.approx(300.0, abs=1e-6)
    assert out["vertical"] == pytest.approx(100.0, abs=1e-6)
    assert out["lateral"] == pytest.approx(200.0, abs=1e-6)
    b = np.linalg.norm([0.7, 0.1, 4.3]) - np.linalg.norm([0.5, 0.0, 4.0])
    assert out["person_depth"] == pytest.approx(1000.0 * b / 2, abs=1e-6)
    # Moving the whole pair leaves the pair-vector parts at zero.
    shifted = placement_errors(gt + [0.0, 0.0, 1.0], gt, joint_names=names)
    assert shifted["depth"] == shifted["lateral"] == shifted["vertical"] == 0.0 and shifted["person_depth"] > 900


def _straight_pair(frames: int) -> tuple[np.ndarray, dict]:
    """Two straight skeletons (T, 2, 24, 3), spine 0.1 m a bone (5 bones), legs 0.1 + 0.4 + 0.4 m (stature
    1.4 m), pelvises at (-0.5, 0, 4) and (0.5, 0, 4); and the joints' indices by name."""
    from socialmirror.body.skeleton import SMPL24_NAMES
    j = np.zeros((frames, 2, 24, 3))
    idx = {n: i for i, n in enumerate(SMPL24_NAMES)}
    for k, n in enumerate(("pelvis", "spine1", "spine2", "spine3", "neck", "head")):
        j[..., idx[n], 1] = -0.1 * k
    for side, x in (("left", 0.1), ("right", -0.1)):
        j[..., idx[f"{side}_hip"], :] = [x, 0.0, 0.0]
        j[..., idx[f"{side}_knee"], :] = [x, 0.4, 0.0]
        j[..., idx[f"{side}_ankle"], :] = [x, 0.8, 0.0]
    j[:, 0] += [-0.5, 0.0, 4.0]
    j[:, 1] += [0.5, 0.0, 4.0]
    return j, idx


def test_person_height_is_the_stature_along_the_skeleton():
    """A straight skeleton (``_straight_pair``). The prediction scales person B by 1.1 about its pelvis: its
    stature 1.4 m grows by 0.14 m, A's does not; bending a knee changes nothing."""
    from socialmirror.body.skeleton import SMPL24_NAMES
    from socialmirror.metrics import placement_errors
    j, idx = _straight_pair(1)
    pred = j.copy()
    pelvis = pred[:, 1, idx["pelvis"]][:, None]
    pred[:, 1] = pelvis + 1.1 * (pred[:, 1] - pelvis)
    pred[:, 0, idx["left_ankle"]] += [0.0, -0.4, 0.4]  # a bent knee keeps the bone lengths
    out = placement_errors(pred, j, joint_names=SMPL24_NAMES)
    assert out["person_height"] == pytest.approx(1000.0 * 0.14 / 2, abs=1e-6)
    assert "person_height" not in placement_errors(pred[:, :, :2], j[:, :, :2], joint_names=SMPL24_NAMES[:2])


def test_person_sizes_are_each_persons_distance_and_stature_by_hand():
    """``_straight_pair`` (pelvises at distance sqrt(16.25)); the prediction scales person B by 0.9 about its
    pelvis and moves it 1 m deeper: a smaller, farther body."""
    from socialmirror.body.skeleton import SMPL24_NAMES
    from socialmirror.metrics import person_sizes
    j, idx = _straight_pair(2)
    pred = j.copy()
    pelvis = pred[:, 1, idx["pelvis"]][:, None]
    pred[:, 1] = pelvis + 0.9 * (pred[:, 1] - pelvis) + [0.0, 0.0, 1.0]
    out = person_sizes(pred, j, joint_names=SMPL24_NAMES)
    d = float(np.sqrt(16.25))
    assert out["depth_true"] == pytest.approx([d, d], abs=1e-4)
    assert out["depth_pred"] == pytest.approx([d, float(np.sqrt(0.25 + 25.0))], abs=1e-4)
    assert out["stature_true"] == pytest.approx([1.4, 1.4], abs=1e-4)
    assert out["stature_pred"] == pytest.approx([1.4, 1.26], abs=1e-4)
    assert set(person_sizes(pred[:, :, :1], j[:, :, :1], joint_names=SMPL24_NAMES[:1])) == {"depth_pred", "depth_true"}
