"""Evaluation metrics for two-person motion (the definitions of ``docs/metrics.md``).

Every joint metric takes ``pred`` and ``gt`` shaped ``(T, 2, J, 3)`` (frames, persons, joints, xyz) in
metres and returns the mean error in millimetres as a Python ``float``. By default ``J = 24`` joints in
SMPL-24 order (:data:`socialmirror.body.skeleton.SMPL24_NAMES`); pass ``joint_names=`` (SMPL-24 names of
the ``J`` joints) to evaluate a subset. The "pelvis" used for alignment is the ``pelvis`` joint when it is
among the joints, otherwise the midpoint of ``left_hip`` and ``right_hip`` stands in for it.

Definitions (alignment stated explicitly; ``||.||`` is the Euclidean norm, means are over every index
listed):

- **MPJPE**: per person and frame, both skeletons translated so their pelvis is at the origin; mean joint
  distance over frames, persons and joints.
- **PA-MPJPE**: per person and frame, the prediction aligned onto the ground truth by a similarity
  Procrustes fit (scale, rotation, translation; reflections excluded); mean joint distance.
- **R-MPJPE** (relative): per frame, both predicted persons moved by ONE shared translation so that the
  midpoint of their two pelvises matches the ground truth's; mean joint distance over both persons.
- **G-MPJPE** (global): ONE translation for the whole sequence (the mean over frames of the offset between
  the ground-truth and predicted pelvis midpoints) applied to both persons; mean joint distance.
- **Int** (CloseInt "Inter"): no alignment, ``1000 * mean_{t,i,j} | ||G_A,i - G_B,j|| - ||P_A,i - P_B,j|| |``;
  invariant to a rigid motion of the pair, sensitive to the placement of one person relative to the other.
- **Accel**: pelvis-aligned joints (as in MPJPE), second differences ``x[t-1] - 2 x[t] + x[t+1]``; the norm
  of the difference between predicted and true accelerations, mean over the ``T - 2`` interior frames,
  persons and joints, in mm per frame squared (not divided by ``dt``). ``T < 3`` raises ``ValueError``.
- **VPE** (CloseInt "Surface"): per person and frame, each mesh translated so its pelvis (from the joints)
  is at the origin; mean vertex distance. Both meshes must share one topology.
- **Placement** (where the pair's relative placement goes wrong; :func:`placement_errors`): the error of the
  pelvis-to-pelvis vector ``e = (P_B - P_A) - (G_B - G_A)``, camera frame, split along the camera ray through
  the ground truth's pelvis midpoint ``d`` (``depth = |e . d|``), the image's vertical orthogonalised to
  ``d`` (``vertical``) and the remaining axis (``lateral``); and each person's depth error, the difference of
  the distances of predicted and true pelvis from the camera centre (``person_depth``), and, where the joints
  have the head, pelvis and both legs, each person's stature error along the skeleton (``person_height``: head down the
  spine to the pelvis plus the mean leg to the ankle). Means over frames (and persons), absolute values, mm.
  No alignment.
- **Pen** (CloseInt "A-PD"), one frame: for each mesh a signed distance grid (32^3 samples over its
  bounding box enlarged 1.2x about its centre); the other mesh's vertices are looked up by trilinear
  interpolation; the depth inside (``max(-sdf, 0)``) counts, outside counts 0; the mean over all vertices
  of both meshes, in mm. :func:`penetration_sequence` averages it over frames.

Signed distance grid: the unsigned distance of a grid sample is the exact distance to the nearest triangle
among those incident to its nearest mesh vertices (a k-d tree finds them); inside/outside is the winding
number along grid lines in the three axis directions (signed ray crossings, the non-zero rule, so the
overlap of a self-intersecting body counts as inside), with a watertight (shared-edge consistent, symbolic
perturbation) point-in-triangle test; a grid line whose crossings do not sum to zero (it passes through a
hole or a flipped face) abstains, and the remaining axes vote. Only the grid samples that a lookup needs
get a distance, which gives the same numbers as the full grid at a fraction of the cost. The grid is coarse
(about 6 cm between samples for a 1.7 m body), so trilinear lookups near a concave surface can read a
small false depth: two identical anny bodies at the same place give about 0.4 mm, not 0.

All functions are pure: inputs are never modified. Torch tensors are accepted and converted to numpy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

from socialmirror.body.skeleton import SMPL24_NAMES, STATURE_ENDS, joint_indices, stature

__all__ = [
    "mpjpe", "pa_mpjpe", "r_mpjpe", "g_mpjpe", "interaction_error", "accel_error", "vertex_error",
    "penetration", "penetration_depths", "penetration_sequence", "signed_distance_grid", "pelvis_positions",
    "placement_errors", "person_sizes",
]

GRID_RES = 32
GRID_PAD = 1.2
_KNN = 8  # nearest vertices whose incident triangles are searched for the exact surface distance


# ---------------------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------------------

def _as_array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot be read as a float array ({e})") from None
    return a


def _check_pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_array(pred, "pred"), _as_array(gt, "gt")
    if p.shape != g.shape or p.ndim != 4 or p.shape[1] != 2 or p.shape[3] != 3 or p.shape[0] < 1 \
            or p.shape[2] < 1:
        raise ValueError(f"pred and gt must both be shaped (T, 2, J, 3) with T, J >= 1; got pred {p.shape} "
                         f"and gt {g.shape}")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise ValueError("pred and gt must be finite (no nan or inf)")
    return p, g


def _names(num_joints: int, joint_names: Sequence[str] | None) -> tuple[str, ...]:
    if joint_names is None:
        if num_joints != len(SMPL24_NAMES):
            raise ValueError(f"{num_joints} joints given without joint_names; the default is the "
                             f"{len(SMPL24_NAMES)} SMPL-24 joints in order")
        return SMPL24_NAMES
    names = tuple(joint_names)
    if len(names) != num_joints:
        raise ValueError(f"joint_names has {len(names)} names but the arrays have {num_joints} joints")
    joint_indices(names)  # raises ValueError on unknown names
    if len(set(names)) != len(names):
        raise ValueError(f"joint_names has duplicates: {names}")
    return names


def pelvis_positions(joints: np.ndarray, joint_names: Sequence[str] | None = None) -> np.ndarray:
    """The pelvis of ``joints`` shaped ``(..., J, 3)``: the ``pelvis`` joint where present, otherwise the
    midpoint of ``left_hip`` and ``right_hip`` (docs/metrics.md). Upper-body-only data (e.g. the Bütepage
    recordings) has neither: there the lowest torso joint present (spine1, spine2, spine3, then neck) is the
    alignment root, the project's documented extension. Returns ``(..., 3)``."""
    j = _as_array(joints, "joints")
    if j.ndim < 2 or j.shape[-1] != 3:
        raise ValueError(f"joints must be shaped (..., J, 3); got {j.shape}")
    names = _names(j.shape[-2], joint_names)
    if "pelvis" in names:
        return j[..., names.index("pelvis"), :]
    if "left_hip" in names and "right_hip" in names:
        return 0.5 * (j[..., names.index("left_hip"), :] + j[..., names.index("right_hip"), :])
    for torso in ("spine1", "spine2", "spine3", "neck"):
        if torso in names:
            return j[..., names.index(torso), :]
    raise ValueError("alignment needs the pelvis, both hips or a torso joint among the joints; got "
                     + ", ".join(names))


def _mean_dist_mm(a: np.ndarray, b: np.ndarray) -> float:
    return float(1000.0 * np.linalg.norm(a - b, axis=-1).mean())


# ---------------------------------------------------------------------------------------------------------
# joint metrics
# ---------------------------------------------------------------------------------------------------------

def mpjpe(pred, gt, *, joint_names: Sequence[str] | None = None) -> float:
    """MPJPE in mm. Alignment: per person and per frame, each skeleton (prediction and ground truth) is
    translated so that its own pelvis is at the origin. Mean over frames, persons and joints."""
    p, g = _check_pair(pred, gt)
    p_root = p - pelvis_positions(p, joint_names)[..., None, :]
    g_root = g - pelvis_positions(g, joint_names)[..., None, :]
    return _mean_dist_mm(p_root, g_root)


def _similarity_align(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Align each ``p[..., J, 3]`` onto ``g`` by the least-squares similarity transform (Umeyama): scale,
    proper rotation (det +1; a reflection is never used) and translation."""
    mp, mg = p.mean(axis=-2, keepdims=True), g.mean(axis=-2, keepdims=True)
    x, y = p - mp, g - mg
    cov = np.swapaxes(y, -1, -2) @ x  # (..., 3, 3) = sum_j y_j x_j^T
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(s.shape)
    d[..., -1] = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    rot = u @ (d[..., :, None] * vt)  # u diag(d) vt
    var_x = (x ** 2).sum(axis=(-2, -1))
    trace = (s * d).sum(axis=-1)
    scale = np.divide(trace, var_x, out=np.zeros_like(trace), where=var_x > 0)
    return scale[..., None, None] * (x @ np.swapaxes(rot, -1, -2)) + mg


def pa_mpjpe(pred, gt, *, joint_names: Sequence[str] | None = None) -> float:
    """PA-MPJPE in mm. Alignment: per person and per frame, the predicted joints are mapped onto the
    ground truth by the similarity transform (scale, rotation, translation; reflections excluded) that
    minimises the squared joint error. Mean over frames, persons and joints."""
    p, g = _check_pair(pred, gt)
    _names(p.shape[2], joint_names)
    return _mean_dist_mm(_similarity_align(p, g), g)


def _pair_midpoint(x: np.ndarray, joint_names) -> np.ndarray:
    """(T, 3) midpoint of the two persons' pelvises."""
    return pelvis_positions(x, joint_names).mean(axis=1)


def r_mpjpe(pred, gt, *, joint_names: Sequence[str] | None = None) -> float:
    """R-MPJPE (relative) in mm. Alignment: per frame, ONE translation shared by both predicted persons
    moves the midpoint of their two pelvises onto the ground truth's. Mean over frames, persons, joints."""
    p, g = _check_pair(pred, gt)
    offset = _pair_midpoint(g, joint_names) - _pair_midpoint(p, joint_names)  # (T, 3)
    return _mean_dist_mm(p + offset[:, None, None, :], g)


def g_mpjpe(pred, gt, *, joint_names: Sequence[str] | None = None) -> float:
    """G-MPJPE (global) in mm. Alignment: ONE translation for the whole sequence and both persons, the
    mean over frames of (ground-truth pelvis midpoint - predicted pelvis midpoint). Mean over frames,
    persons and joints."""
    p, g = _check_pair(pred, gt)
    offset = (_pair_midpoint(g, joint_names) - _pair_midpoint(p, joint_names)).mean(axis=0)  # (3,)
    return _mean_dist_mm(p + offset, g)


def interaction_error(pred, gt, *, joint_names: Sequence[str] | None = None) -> float:
    """Int (CloseInt "Inter") in mm. No alignment (invariant to a rigid motion of the pair):
    ``1000 * mean over frames and (i, j) of | ||G_A,i - G_B,j|| - ||P_A,i - P_B,j|| |``, the error of the
    (J x J) matrix of distances from person A's joints to person B's."""
    p, g = _check_pair(pred, gt)
    _names(p.shape[2], joint_names)

    def cross(x):
        return np.linalg.norm(x[:, 0, :, None, :] - x[:, 1, None, :, :], axis=-1)  # (T, J, J)

    return float(1000.0 * np.abs(cross(g) - cross(p)).mean())


def placement_errors(pred, gt, *, joint_names: Sequence[str] | None = None) -> dict[str, float]:
    """The pair's placement error decomposed (module docstring, **Placement**), mm: ``depth``, ``lateral`` and
    ``vertical`` parts of the pelvis-to-pelvis vector's error, and ``person_depth``, each person's error of
    distance from the camera."""
    p, g = _check_pair(pred, gt)
    _names(p.shape[2], joint_names)
    pp, gp = pelvis_positions(p, joint_names), pelvis_positions(g, joint_names)  # (T, 2, 3)
    e = (pp[:, 1] - pp[:, 0]) - (gp[:, 1] - gp[:, 0])  # (T, 3)
    ray = gp.mean(axis=1)
    ray = ray / np.linalg.norm(ray, axis=-1, keepdims=True).clip(1e-9)
    down = np.array([0.0, 1.0, 0.0]) - ray[:, 1:2] * ray  # the image's vertical, orthogonal to the ray
    down = down / np.linalg.norm(down, axis=-1, keepdims=True).clip(1e-9)
    side = np.cross(down, ray)
    along = (lambda axis: float(1000.0 * np.abs((e * axis).sum(-1)).mean()))  # noqa: E731
    depth_error = np.linalg.norm(pp, axis=-1) - np.linalg.norm(gp, axis=-1)  # (T, 2)
    out = {"depth": along(ray), "lateral": along(side), "vertical": along(down),
           "person_depth": float(1000.0 * np.abs(depth_error).mean())}
    names = _names(p.shape[2], joint_names)
    if all(n in names for n in STATURE_ENDS):
        out["person_height"] = float(1000.0 * np.abs(stature(p, names) - stature(g, names)).mean())
    return out


def person_sizes(pred, gt, *, joint_names: Sequence[str] | None = None) -> dict[str, list[float]]:
    """Each person's mean distance of the pelvis from the camera centre and, where the joints have the
    stature's ends, mean stature along the skeleton, predicted and true (metres; lists of two, the persons'
    order): the per-person numbers behind ``person_depth`` and ``person_height``, so that a report can ask
    whether a person's depth error follows their size error (one view cannot tell a small near body from a
    large far one)."""
    p, g = _check_pair(pred, gt)
    names = _names(p.shape[2], joint_names)
    distance = (lambda x: np.linalg.norm(pelvis_positions(x, names), axis=-1).mean(0))  # noqa: E731
    out = {"depth_pred": distance(p), "depth_true": distance(g)}
    if all(n in names for n in STATURE_ENDS):
        out.update(stature_pred=stature(p, names).mean(0), stature_true=stature(g, names).mean(0))
    return {k: [round(float(x), 4) for x in v] for k, v in out.items()}


def accel_error(pred, gt, *, joint_names: Sequence[str] | None = None) -> float:
    """Acceleration error in mm per frame squared (not divided by dt). Alignment: pelvis-aligned joints
    (per person and frame, as in MPJPE). Second differences ``x[t-1] - 2 x[t] + x[t+1]``; mean over the
    T - 2 interior frames, both persons and the joints of the norm of (pred - gt) acceleration.
    Raises ValueError when T < 3 (no interior frame)."""
    p, g = _check_pair(pred, gt)
    if p.shape[0] < 3:
        raise ValueError(f"accel_error needs at least 3 frames; got T = {p.shape[0]}")
    p = p - pelvis_positions(p, joint_names)[..., None, :]
    g = g - pelvis_positions(g, joint_names)[..., None, :]

    def acc(x):
        return x[:-2] - 2.0 * x[1:-1] + x[2:]

    return _mean_dist_mm(acc(p), acc(g))


def vertex_error(pred_verts, gt_verts, pred_joints, gt_joints, *,
                 joint_names: Sequence[str] | None = None) -> float:
    """VPE (CloseInt "Surface") in mm. Alignment: per person and frame, each mesh is translated so that
    its own pelvis (taken from the matching joints) is at the origin; no rotation or scale. Mean vertex
    distance over frames, persons and vertices.

    Shapes: verts ``(T, 2, V, 3)`` and joints ``(T, 2, J, 3)`` (a single frame ``(2, V, 3)`` with
    ``(2, J, 3)`` also works). Both meshes must have the same topology (same V, vertices in
    correspondence); a mismatch raises ValueError."""
    pv, gv = _as_array(pred_verts, "pred_verts"), _as_array(gt_verts, "gt_verts")
    pj, gj = _as_array(pred_joints, "pred_joints"), _as_array(gt_joints, "gt_joints")
    if pv.shape != gv.shape:
        raise ValueError(f"vertex_error needs meshes of the same topology: pred_verts {pv.shape} vs "
                         f"gt_verts {gv.shape}")
    if pj.shape != gj.shape:
        raise ValueError(f"pred_joints {pj.shape} and gt_joints {gj.shape} differ in shape")
    if pv.ndim not in (3, 4) or pv.shape[-1] != 3 or pv.shape[-3] != 2 or pj.ndim != pv.ndim \
            or pj.shape[:-2] != pv.shape[:-2] or pj.shape[-1] != 3:
        raise ValueError(f"expected verts (T, 2, V, 3) with joints (T, 2, J, 3); got verts {pv.shape} and "
                         f"joints {pj.shape}")
    pv = pv - pelvis_positions(pj, joint_names)[..., None, :]
    gv = gv - pelvis_positions(gj, joint_names)[..., None, :]
    return _mean_dist_mm(pv, gv)


# ---------------------------------------------------------------------------------------------------------
# signed distance grid and penetration
# ---------------------------------------------------------------------------------------------------------

def _check_mesh(verts, faces, name: str) -> tuple[np.ndarray, np.ndarray]:
    v = _as_array(verts, f"verts_{name}")
    if hasattr(faces, "detach"):
        faces = faces.detach().cpu().numpy()
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"verts_{name} must be shaped (V, 3) with V >= 1; got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"faces_{name} must be shaped (F, 3) with F >= 1; got {f.shape}")
    if not np.issubdtype(f.dtype, np.integer):
        if not np.all(np.mod(f, 1) == 0):
            raise ValueError(f"faces_{name} must hold integer vertex indices")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"faces_{name} index vertices outside 0..{len(v) - 1}")
    if not np.isfinite(v).all():
        raise ValueError(f"verts_{name} must be finite")
    return v, f


def _grid_axes(verts: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample coordinates of the grid: the bounding box enlarged ``GRID_PAD`` times about its centre.
    Returns (lo (3,), step (3,), axes (3, res))."""
    vmin, vmax = verts.min(axis=0), verts.max(axis=0)
    centre = 0.5 * (vmin + vmax)
    half = 0.5 * GRID_PAD * (vmax - vmin)
    half = np.maximum(half, 1e-6 * max(1.0, float(np.abs(centre).max())))  # a flat box still gets a grid
    lo = centre - half
    step = 2.0 * half / (res - 1)
    axes = lo[:, None] + step[:, None] * np.arange(res)[None, :]
    return lo, step, axes


def _edge_sign(v2: np.ndarray, i0: np.ndarray, i1: np.ndarray, pu: np.ndarray, pv: np.ndarray):
    """Sign and value of the 2D edge function of the directed edge (i0 -> i1) at points (pu, pv), with
    the point perturbed symbolically by (eps, eps^2) so that no sign is ever zero unless the edge is
    degenerate. It is evaluated on the edge in canonical order (smaller vertex index first) and negated
    for the reverse direction, so two triangles that share an edge always see the point on opposite
    sides: a ray never slips through, nor counts twice, a shared edge or vertex of a closed surface."""
    swap = i0 > i1
    a = np.where(swap, i1, i0)
    b = np.where(swap, i0, i1)
    ax, ay = v2[a, 0], v2[a, 1]
    dx, dy = v2[b, 0] - ax, v2[b, 1] - ay
    val = dx * (pv - ay) - dy * (pu - ax)
    sgn = np.sign(val)
    tie = sgn == 0
    if tie.any():
        alt = np.where(dy != 0, np.sign(-dy), np.sign(dx))
        sgn = np.where(tie, alt, sgn)
    flip = np.where(swap, -1.0, 1.0)
    return sgn * flip, val * flip


def _inside_grid(verts: np.ndarray, faces: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Boolean (res, res, res) inside mask of the grid samples: the winding number along grid lines in
    each axis direction (signed crossings, non-zero rule), with a vote across the three axes (a grid line
    whose crossings do not sum to zero abstains)."""
    res = axes.shape[1]
    inside_votes = np.zeros((res, res, res), dtype=np.int8)
    valid_votes = np.zeros((res, res, res), dtype=np.int8)
    raw_votes = np.zeros((res, res, res), dtype=np.int8)
    nf = len(faces)
    for ax in range(3):
        u_ax, v_ax = [k for k in range(3) if k != ax]
        gu, gv, ga = axes[u_ax], axes[v_ax], axes[ax]
        v2 = verts[:, [u_ax, v_ax]]
        tri = v2[faces]  # (F, 3, 2)
        tmin, tmax = tri.min(axis=1), tri.max(axis=1)
        eps_u = 1e-9 * (abs(gu[-1] - gu[0]) + 1.0)
        eps_v = 1e-9 * (abs(gv[-1] - gv[0]) + 1.0)
        j0 = np.searchsorted(gu, tmin[:, 0] - eps_u, side="left")
        j1 = np.searchsorted(gu, tmax[:, 0] + eps_u, side="right")
        k0 = np.searchsorted(gv, tmin[:, 1] - eps_v, side="left")
        k1 = np.searchsorted(gv, tmax[:, 1] + eps_v, side="right")
        nj, nk = np.maximum(j1 - j0, 0), np.maximum(k1 - k0, 0)
        count = nj * nk
        total = int(count.sum())
        diff = np.zeros((res, res, res + 1), dtype=np.int32)
        if total:
            fi = np.repeat(np.arange(nf), count)
            start = np.repeat(np.cumsum(count) - count, count)
            o = np.arange(total) - start
            nk_f = nk[fi]
            j = j0[fi] + o // nk_f
            k = k0[fi] + o % nk_f
            pu, pv = gu[j], gv[k]
            a, b, c = faces[fi, 0], faces[fi, 1], faces[fi, 2]
            s_a, w_a = _edge_sign(v2, b, c, pu, pv)  # weight of vertex a (edge opposite a)
            s_b, w_b = _edge_sign(v2, c, a, pu, pv)
            s_c, w_c = _edge_sign(v2, a, b, pu, pv)
            hit = (s_a != 0) & (s_a == s_b) & (s_b == s_c)
            if hit.any():
                w_a, w_b, w_c = w_a[hit], w_b[hit], w_c[hit]
                fa, fb, fc = a[hit], b[hit], c[hit]
                wsum = w_a + w_b + w_c
                coord_a, coord_b, coord_c = verts[fa, ax], verts[fb, ax], verts[fc, ax]
                safe = wsum != 0
                x_hit = np.where(
                    safe,
                    (w_a * coord_a + w_b * coord_b + w_c * coord_c) / np.where(safe, wsum, 1.0),
                    (coord_a + coord_b + coord_c) / 3.0)
                i0 = np.searchsorted(ga, x_hit, side="right")  # samples i >= i0 lie beyond the crossing
                np.add.at(diff, (j[hit], k[hit], i0), s_a[hit].astype(np.int32))  # signed crossing
        crossings = np.cumsum(diff[..., :res], axis=-1)
        line_total = diff.sum(axis=-1)
        inside = crossings != 0
        valid = np.broadcast_to((line_total == 0)[..., None], inside.shape)
        inside = np.moveaxis(inside, -1, ax)
        valid = np.moveaxis(valid, -1, ax)
        raw_votes += inside
        inside_votes += inside & valid
        valid_votes += valid
    decided = 2 * inside_votes != valid_votes
    return np.where(decided, 2 * inside_votes > valid_votes, raw_votes >= 2)


class _SurfaceDistance:
    """Exact distance from points to the triangle mesh, searched among the triangles incident to each
    point's ``_KNN`` nearest vertices (exact for reasonably even meshes; far points are never worse than
    the nearest-vertex distance)."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray):
        self.verts, self.faces = verts, faces
        used = np.unique(faces)
        self.used = used
        self.tree = cKDTree(verts[used])
        # vertex -> incident faces, padded with the vertex's first face (duplicates do not change a min)
        vf_v = faces.ravel()
        vf_f = np.repeat(np.arange(len(faces)), 3)
        order = np.argsort(vf_v, kind="stable")
        vf_v, vf_f = vf_v[order], vf_f[order]
        counts = np.bincount(vf_v, minlength=len(verts))
        starts = np.cumsum(counts) - counts
        width = int(counts.max())
        slot = np.arange(len(vf_v)) - starts[vf_v]
        first = np.zeros(len(verts), dtype=np.int64)
        first[counts > 0] = vf_f[starts[counts > 0]]
        table = np.repeat(first[:, None], width, axis=1)
        table[vf_v, slot] = vf_f
        self.incident = table
        self.tri = verts[faces]  # (F, 3, 3)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        if len(points) == 0:
            return np.zeros(0)
        k = min(_KNN, len(self.used))
        _, idx = self.tree.query(points, k=k)
        idx = self.used[np.asarray(idx).reshape(len(points), k)]
        cand = self.incident[idx].reshape(len(points), -1)  # (N, k * width)
        cand = np.sort(cand, axis=1)  # drop repeated faces to save work
        keep = np.ones(cand.shape, dtype=bool)
        keep[:, 1:] = cand[:, 1:] != cand[:, :-1]
        rows = np.nonzero(keep)[0]
        faces = cand[keep]
        d2 = _point_triangle_dist2(points[rows], self.tri[faces])
        # rows is sorted and every point keeps at least one candidate: a segmented minimum
        row_start = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        return np.sqrt(np.minimum.reduceat(d2, row_start))


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1],
                     u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2],
                     u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]], axis=1)


def _point_segment_dist2(p, a, b):
    ab = b - a
    denom = (ab * ab).sum(-1)
    t = np.divide(((p - a) * ab).sum(-1), denom, out=np.zeros_like(denom), where=denom > 0)
    t = np.clip(t, 0.0, 1.0)
    d = p - (a + t[:, None] * ab)
    return (d * d).sum(-1)


def _point_triangle_dist2(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Squared distance from points (N, 3) to triangles (N, 3, 3): the plane distance where the point's
    projection falls inside the triangle, otherwise the distance to the nearest edge."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    n = _cross(b - a, c - a)
    nn = (n * n).sum(-1)
    ap = p - a
    # projection inside iff the point lies on the inner side of all three edge planes
    s0 = (_cross(b - a, ap) * n).sum(-1)
    s1 = (_cross(c - b, p - b) * n).sum(-1)
    s2 = (_cross(a - c, p - c) * n).sum(-1)
    inside = (nn > 0) & (s0 >= 0) & (s1 >= 0) & (s2 >= 0)
    plane = np.divide((ap * n).sum(-1) ** 2, nn, out=np.zeros_like(nn), where=nn > 0)
    edge = np.minimum(np.minimum(_point_segment_dist2(p, a, b), _point_segment_dist2(p, b, c)),
                      _point_segment_dist2(p, c, a))
    return np.where(inside, plane, edge)


def _corner_indices(points: np.ndarray, lo: np.ndarray, step: np.ndarray, res: int):
    """For points inside the grid box: their mask, the lower cell corner (n, 3) and the local (n, 3)
    trilinear weights."""
    f = (points - lo) / step
    in_box = np.all((f >= 0) & (f <= res - 1), axis=1)
    f = f[in_box]
    i0 = np.clip(np.floor(f).astype(np.int64), 0, res - 2)
    return in_box, i0, f - i0


_CORNERS = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.int64)


def _sdf_at_corners(verts, faces, axes, flat_idx: np.ndarray, res: int,
                    dist: _SurfaceDistance | None = None) -> np.ndarray:
    inside = _inside_grid(verts, faces, axes).ravel()[flat_idx]
    ii, jj, kk = np.unravel_index(flat_idx, (res, res, res))
    pts = np.stack([axes[0][ii], axes[1][jj], axes[2][kk]], axis=1)
    d = (dist or _SurfaceDistance(verts, faces))(pts)
    return np.where(inside, -d, d)


def signed_distance_grid(verts, faces, res: int = GRID_RES):
    """The full signed distance grid of a mesh (negative inside), sampled ``res``^3 over its bounding box
    enlarged 1.2x about its centre. Returns ``(sdf (res, res, res), lo (3,), step (3,))``: sample
    ``[i, j, k]`` lies at ``lo + step * (i, j, k)``."""
    v, f = _check_mesh(verts, faces, "a")
    if res < 2:
        raise ValueError(f"res must be at least 2; got {res}")
    lo, step, axes = _grid_axes(v, res)
    sdf = _sdf_at_corners(v, f, axes, np.arange(res ** 3), res).reshape(res, res, res)
    return sdf, lo, step


def penetration_depths(verts, faces, others, res: int = GRID_RES) -> np.ndarray:
    """Penetration depth (>= 0, metres) of each point of ``others`` (N, 3) inside the mesh (verts, faces), read
    from its signed distance grid (``res``^3) by trilinear interpolation; 0 outside the grid box. Only the grid
    samples that the lookups use are computed. :func:`penetration` is the mean of these over both meshes."""
    verts, faces = _check_mesh(verts, faces, "a")
    others = _as_array(others, "others")
    depth = np.zeros(len(others))
    lo, step, axes = _grid_axes(verts, res)
    in_box, i0, t = _corner_indices(others, lo, step, res)
    if not in_box.any():
        return depth
    corners = i0[:, None, :] + _CORNERS[None, :, :]  # (n, 8, 3)
    flat = np.ravel_multi_index((corners[..., 0], corners[..., 1], corners[..., 2]), (res, res, res))
    needed, inverse = np.unique(flat, return_inverse=True)
    values = _sdf_at_corners(verts, faces, axes, needed, res)[inverse.reshape(flat.shape)]  # (n, 8)
    w = np.where(_CORNERS[None, :, :] == 1, t[:, None, :], 1.0 - t[:, None, :]).prod(axis=-1)  # (n, 8)
    sdf = (w * values).sum(axis=1)
    depth[in_box] = np.maximum(-sdf, 0.0)
    return depth


def penetration(verts_a, faces_a, verts_b, faces_b, *, res: int = GRID_RES) -> float:
    """Penetration depth (CloseInt "A-PD") of ONE frame, in mm. No alignment (the meshes as given, same
    frame). Each mesh gets a signed distance grid (``res``^3 samples over its bounding box enlarged 1.2x);
    the other mesh's vertices are looked up by trilinear interpolation; depth inside counts, outside 0;
    returns the mean over all ``V_a + V_b`` vertices, in mm. Meshes whose grid boxes do not reach the
    other's vertices give exactly 0. Works for any topology; open meshes are handled by the voting
    inside test (see the module docstring)."""
    va, fa = _check_mesh(verts_a, faces_a, "a")
    vb, fb = _check_mesh(verts_b, faces_b, "b")
    if res < 2:
        raise ValueError(f"res must be at least 2; got {res}")
    total = penetration_depths(va, fa, vb, res).sum() + penetration_depths(vb, fb, va, res).sum()
    return float(1000.0 * total / (len(va) + len(vb)))


def penetration_sequence(verts_a, faces_a, verts_b=None, faces_b=None, *, res: int = GRID_RES) -> float:
    """Mean over frames of :func:`penetration`, in mm. Two call forms:

    - ``penetration_sequence(verts, faces)`` with ``verts`` shaped ``(T, 2, V, 3)`` and ``faces`` either
      one ``(F, 3)`` array shared by both persons or a pair ``(faces_a, faces_b)``;
    - ``penetration_sequence(verts_a, faces_a, verts_b, faces_b)`` with ``(T, V_a, 3)`` and ``(T, V_b, 3)``.
    """
    if verts_b is None:
        v = _as_array(verts_a, "verts")
        if v.ndim != 4 or v.shape[1] != 2 or v.shape[3] != 3 or v.shape[0] < 1:
            raise ValueError(f"verts must be shaped (T, 2, V, 3); got {v.shape}")
        f = faces_a
        if isinstance(f, (tuple, list)) and len(f) == 2 and np.ndim(f[0]) == 2:
            f_a, f_b = f
        else:
            f_a = f_b = f
        if faces_b is not None:
            f_b = faces_b
        seq_a, seq_b = v[:, 0], v[:, 1]
    else:
        seq_a, seq_b = _as_array(verts_a, "verts_a"), _as_array(verts_b, "verts_b")
        f_a, f_b = faces_a, (faces_a if faces_b is None else faces_b)
        if seq_a.ndim != 3 or seq_b.ndim != 3 or seq_a.shape[0] != seq_b.shape[0] or seq_a.shape[0] < 1:
            raise ValueError(f"verts_a and verts_b must be shaped (T, V, 3) with the same T >= 1; got "
                             f"{seq_a.shape} and {seq_b.shape}")
    return float(np.mean([penetration(seq_a[t], f_a, seq_b[t], f_b, res=res) for t in range(len(seq_a))]))
