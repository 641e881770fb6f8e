"""Partner-aware arms: the elbow turned about the shoulder-wrist line to where the arm clears the other body.

Two-bone IK fixes the shoulder and the wrist; what is left free is the elbow's turn about the line between
them (the "pole"). A script sets a pole by hand (elbows out, down, back), which is enough while a hand
meets a hand or a shoulder in the open. An arm that goes round the partner (a hug: over the shoulders,
round the waist) passes close to the other body all along its length, and a hand-set pole puts the
forearm through the partner's flank or shoulder in some draws. Here each frame's turn is chosen from a
grid of angles by the arm's clearance from the partner's posed surface (and, for the forearm, from the
arm owner's own trunk), and the turns over time by dynamic programming, so the elbow moves smoothly and
stays near the script's pole where every turn is clear.

Also here: how far one surface can move along a direction before it meets another (``separation_along``), which
contact refinement and the hug's placement measure gaps with.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

# Share of the upper arm next to the shoulder and of the forearm next to the wrist left out of the clearance:
# the shoulder sits on its own trunk, and the hand's end touches the partner by design.
UPPER_SPAN = (0.3, 1.0)
FORE_SPAN = (0.0, 0.75)
ENOUGH = 0.03  # clearance (m) beyond which a turn is as good as any other
STAY = 0.01  # cost (m of clearance) of one radian away from the script's pole
SMOOTH = 0.06  # cost (m of clearance) of one radian of turn between consecutive frames


def bone_radius(vertices: np.ndarray, dominant: np.ndarray, joints: np.ndarray, start: int, end: int) -> float:
    """How far the skin of the bone from joint ``start`` to ``end`` lies from its axis (m): the 95th percentile
    over the vertices the bone dominates along its middle (rest pose; arms differ by build by half again)."""
    a, b = joints[start], joints[end]
    p = vertices[dominant == start]
    t = np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
    d = np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1)
    return float(np.percentile(d[(t > 0.2) & (t < 0.9)], 95))


def turn_about(axis_from: np.ndarray, axis_to: np.ndarray, point: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """``point`` (T, 3) turned by ``angle`` (T,) rad about the line from ``axis_from`` to ``axis_to`` (T, 3)
    (right-handed about that direction); points on the line stay."""
    a = axis_to - axis_from
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    v = point - axis_from
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    dot = np.sum(a * v, -1, keepdims=True)
    return axis_from + v * c + np.cross(a, v) * s + a * dot * (1.0 - c)


def _bone_points(a: np.ndarray, b: np.ndarray, span: tuple[float, float], n: int = 6) -> np.ndarray:
    """(..., n, 3) points along a -> b (..., 3) over the fraction ``span`` of its length."""
    f = np.linspace(span[0], span[1], n)[:, None]
    return a[..., None, :] + f * (b - a)[..., None, :]


def arm_clearance(shoulder: np.ndarray, elbow: np.ndarray, wrist: np.ndarray, partner: list[cKDTree],
                  own: list[cKDTree] | None, radius: tuple[float, float]) -> np.ndarray:
    """The arm's clearance (m), (T,) for elbows (T, 3) or (T, A) for A candidate elbows a frame (T, A, 3): the
    least distance from its surface (bones thickened by ``radius``, upper arm and forearm) to the partner's
    surface points (one KD-tree a frame), and from the forearm to ``own``."""
    if elbow.ndim == 2:
        return arm_clearance(shoulder, elbow[:, None], wrist, partner, own, radius)[:, 0]
    A = elbow.shape[1]
    upper = _bone_points(shoulder[:, None], elbow, UPPER_SPAN)  # (T, A, n, 3)
    fore = _bone_points(elbow, wrist[:, None], FORE_SPAN)
    out = np.empty((len(shoulder), A))
    for t in range(len(shoulder)):
        du = partner[t].query(upper[t].reshape(-1, 3))[0].reshape(A, -1) - radius[0]
        fore_t = fore[t].reshape(-1, 3)
        df = partner[t].query(fore_t)[0].reshape(A, -1) - radius[1]
        c = np.minimum(du.min(1), df.min(1))
        if own is not None:
            c = np.minimum(c, own[t].query(fore_t)[0].reshape(A, -1).min(1) - radius[1])
        out[t] = c
    return out


def clearest_turns(shoulder: np.ndarray, elbow: np.ndarray, wrist: np.ndarray, partner: list[cKDTree],
                   own: list[cKDTree] | None, radius: tuple[float, float],
                   angles: np.ndarray = np.radians(np.arange(-90.0, 91.0, 7.5))) -> tuple[np.ndarray, np.ndarray]:
    """The elbow's turn (T,) rad about the shoulder-wrist line for each frame, and the arm's clearance (T,)
    there: the path over ``angles`` that maximises the clearance (capped at ``ENOUGH``) less ``STAY`` per
    radian from the posed elbow and ``SMOOTH`` per radian of change between frames (Viterbi)."""
    T, A = len(shoulder), len(angles)
    turned = np.stack([turn_about(shoulder, wrist, elbow, np.full(T, a)) for a in angles], 1)  # (T, A, 3)
    clear = arm_clearance(shoulder, turned, wrist, partner, own, radius)
    gain = np.minimum(clear, ENOUGH) - STAY * np.abs(angles)[None]
    step = SMOOTH * np.abs(angles[:, None] - angles[None, :])  # (from, to)
    score = gain[0].copy()
    back = np.zeros((T, A), dtype=np.int64)
    for t in range(1, T):
        total = score[:, None] - step
        back[t] = np.argmax(total, axis=0)
        score = total[back[t], np.arange(A)] + gain[t]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return angles[path], clear[np.arange(T), path]


def separation_along(a: np.ndarray, b: np.ndarray, u: np.ndarray, cell: float = 0.008) -> float | None:
    """How far point set ``a`` can move along unit ``u`` before it meets ``b`` (negative: they overlap
    by that much), or None where they do not face each other.

    Both sets are binned on a grid of ``cell`` metres in the plane normal to ``u``; in every cell both
    occupy, the gap is b's nearest point minus a's farthest point along ``u``. Unlike a closest-vertex
    distance this stays signed once two surfaces cross, so contact refinement can back out of an
    overlap as well as close a gap."""
    ux, uy, uz = float(u[0]), float(u[1]), float(u[2])
    e1 = np.array([0.0, uz, -uy])  # u x (1, 0, 0)
    if e1 @ e1 < 0.01:
        e1 = np.array([-uz, 0.0, ux])  # u x (0, 1, 0)
    e1 /= np.sqrt(e1 @ e1)
    e2 = np.array([uy * e1[2] - uz * e1[1], uz * e1[0] - ux * e1[2], ux * e1[1] - uy * e1[0]])
    # integer cell coordinates on one dense grid over both sets (patches span well under a metre)
    pa = np.floor(np.stack([a @ e1, a @ e2], 1) / cell).astype(np.int64)
    pb = np.floor(np.stack([b @ e1, b @ e2], 1) / cell).astype(np.int64)
    lo = np.minimum(pa.min(0), pb.min(0))
    pa -= lo
    pb -= lo
    n1 = int(max(pa[:, 1].max(), pb[:, 1].max())) + 1
    size = (int(max(pa[:, 0].max(), pb[:, 0].max())) + 1) * n1
    amax = np.full(size, -np.inf)
    np.maximum.at(amax, pa[:, 0] * n1 + pa[:, 1], a @ u)
    bmin = np.full(size, np.inf)
    np.minimum.at(bmin, pb[:, 0] * n1 + pb[:, 1], b @ u)
    both = np.isfinite(amax) & np.isfinite(bmin)
    if not both.any():
        return None
    return float((bmin[both] - amax[both]).min())


__all__ = ["arm_clearance", "bone_radius", "clearest_turns", "separation_along", "turn_about"]
