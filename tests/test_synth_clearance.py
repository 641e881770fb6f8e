"""Partner-aware arms (``data.synth.clearance``): the elbow's turn about the shoulder-wrist line, an arm's
clearance from another body, and the turns that route an arm round it."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from socialmirror.data.synth.clearance import bone_radius, clearest_turns, separation_along, turn_about


def _arm(T: int):
    """An arm along +x: shoulder at the origin, wrist 0.5 m out, the elbow bent down (-y) by 0.12 m."""
    shoulder = np.zeros((T, 3))
    wrist = np.tile([0.5, 0.0, 0.0], (T, 1))
    elbow = np.tile([0.25, -0.12, 0.0], (T, 1))
    return shoulder, elbow, wrist


def _ball(centre, radius: float = 0.05, n: int = 400) -> np.ndarray:
    """Points on a sphere: a body part's surface."""
    rng = np.random.default_rng(0)
    d = rng.normal(size=(n, 3))
    return np.asarray(centre) + radius * d / np.linalg.norm(d, axis=1, keepdims=True)


def test_a_turn_keeps_the_bones_and_moves_the_elbow_round_the_axis():
    shoulder, elbow, wrist = _arm(3)
    angle = np.array([0.0, np.pi / 2, np.pi])
    e = turn_about(shoulder, wrist, elbow, angle)
    assert np.allclose(np.linalg.norm(e - shoulder, axis=1), np.linalg.norm(elbow - shoulder, axis=1))
    assert np.allclose(np.linalg.norm(wrist - e, axis=1), np.linalg.norm(wrist - elbow, axis=1))
    assert np.allclose(e[0], elbow[0])
    assert np.allclose(e[1], [0.25, 0.0, -0.12])  # a quarter turn about +x takes -y to -z
    assert np.allclose(e[2], [0.25, 0.12, 0.0])  # half a turn: the elbow up
    assert np.allclose(turn_about(shoulder, wrist, wrist, angle), wrist)  # points on the axis stay


def test_the_arm_is_routed_round_a_body_part_in_its_way_and_left_alone_elsewhere():
    """A ball sits where the bent elbow is in the middle frames: there the elbow turns away (the arm clears it) and
    holds its turn while the ball stays put; before and after, the turn is the script's."""
    T = 30
    shoulder, elbow, wrist = _arm(T)
    blocked = _ball([0.25, -0.17, 0.0])
    far = _ball([0.25, -5.0, 0.0])
    partner = [cKDTree(blocked if 10 <= t < 20 else far) for t in range(T)]
    radius = (0.045, 0.035)
    turn, clear = clearest_turns(shoulder, elbow, wrist, partner, None, radius)
    posed = np.array([cKDTree(blocked).query(elbow[0])[0] - radius[0]])
    assert posed[0] < 0  # the scripted elbow is inside the ball
    assert np.all(clear[12:18] > 0) and np.all(np.abs(turn[12:18]) > np.radians(30))
    assert np.all(turn[:3] == 0) and np.all(turn[-3:] == 0)
    assert len(set(turn[10:20].tolist())) == 1


def test_the_forearm_keeps_clear_of_its_own_trunk():
    """Two turns clear the partner equally (no partner nearby); the one that would put the forearm into the arm's
    own trunk is not taken."""
    T = 5
    shoulder, elbow, wrist = _arm(T)
    partner = [cKDTree(_ball([0.0, -9.0, 0.0])) for _ in range(T)]
    own = [cKDTree(_ball([0.3, -0.15, 0.0], 0.06)) for _ in range(T)]
    turn, clear = clearest_turns(shoulder, elbow, wrist, partner, own, (0.045, 0.035))
    assert np.all(clear > 0) and np.all(np.abs(turn) > np.radians(30))


def test_bone_radius_is_the_skin_distance_from_the_axis():
    """Points on a cylinder of radius 4 cm round a bone from (0, 0, 0) to (0, -0.3, 0)."""
    rng = np.random.default_rng(1)
    n = 2000
    t = rng.uniform(0, 1, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    v = np.stack([0.04 * np.cos(phi), -0.3 * t, 0.04 * np.sin(phi)], 1)
    joints = np.array([[0.0, 0.0, 0.0], [0.0, -0.3, 0.0]])
    assert abs(bone_radius(v, np.zeros(n, dtype=int), joints, 0, 1) - 0.04) < 1e-6


def test_separation_along_is_the_signed_gap_between_facing_surfaces():
    g = np.linspace(-0.1, 0.1, 21)
    plane = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    a = np.concatenate([plane, np.zeros((len(plane), 1))], 1)  # z = 0
    u = np.array([0.0, 0.0, 1.0])
    assert abs(separation_along(a, a + [0, 0, 0.05], u) - 0.05) < 1e-9
    assert abs(separation_along(a, a - [0, 0, 0.02], u) + 0.02) < 1e-9  # crossed: negative
    assert separation_along(a, a + [1.0, 0, 0.05], u) is None  # side by side, not facing
