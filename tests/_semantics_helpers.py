"""Synthetic two-person SMPL-24 skeletons for the semantics tests (y up, metres)."""
from __future__ import annotations

import numpy as np

from socialmirror.body.skeleton import JOINT_INDEX, SMPL24_NAMES

# A standing person at the origin facing +z (left is +x), y up.
_BASE = {
    "pelvis": (0, .95, 0), "left_hip": (.09, .88, 0), "right_hip": (-.09, .88, 0), "spine1": (0, 1.05, 0),
    "left_knee": (.1, .5, 0), "right_knee": (-.1, .5, 0), "spine2": (0, 1.18, 0), "left_ankle": (.1, .08, 0),
    "right_ankle": (-.1, .08, 0), "spine3": (0, 1.25, 0), "left_foot": (.1, .02, .12),
    "right_foot": (-.1, .02, .12), "neck": (0, 1.48, 0), "left_collar": (.08, 1.42, 0),
    "right_collar": (-.08, 1.42, 0), "head": (0, 1.62, .02), "left_shoulder": (.18, 1.42, 0),
    "right_shoulder": (-.18, 1.42, 0), "left_elbow": (.2, 1.15, 0), "right_elbow": (-.2, 1.15, 0),
    "left_wrist": (.22, .9, .05), "right_wrist": (-.22, .9, .05), "left_hand": (.23, .82, .07),
    "right_hand": (-.23, .82, .07),
}


def standing(**moved) -> np.ndarray:
    p = np.array([_BASE[n] for n in SMPL24_NAMES], dtype=np.float64)
    for name, xyz in moved.items():
        p[JOINT_INDEX[name]] = xyz
    return p


def place(p: np.ndarray, x: float, z: float, turn: bool) -> np.ndarray:
    """Turn 180 degrees about y (to face -z) when ``turn``, then move to (x, ., z)."""
    q = p.copy()
    if turn:
        q[:, 0] *= -1
        q[:, 2] *= -1
    q[:, 0] += x
    q[:, 2] += z
    return q


_RIGHT_ARM_FORWARD = {"right_elbow": (-.18, 1.1, .25), "right_wrist": (-.16, 1.05, .35),
                      "right_hand": (-.15, 1.03, .40)}


def handshake(T: int = 16, on: tuple[int, int] = (5, 10), dz: float = 0.8) -> np.ndarray:
    """Two people facing each other ``dz`` apart; right hands meet over frames ``on`` (inclusive)."""
    j = np.zeros((T, 2, 24, 3))
    for t in range(T):
        moved = _RIGHT_ARM_FORWARD if on[0] <= t <= on[1] else {}
        j[t, 0] = place(standing(**moved), 0.0, 0.0, False)
        j[t, 1] = place(standing(**moved), -0.3, dz, True)
    return j


def hand_on_shoulder(T: int = 16, on: tuple[int, int] = (3, 12)) -> np.ndarray:
    """Person 1 puts the right hand on person 2's left shoulder over frames ``on``."""
    j = np.zeros((T, 2, 24, 3))
    p2 = place(standing(), 0.0, 0.55, True)
    target = p2[JOINT_INDEX["left_shoulder"]] + np.array([0.0, 0.06, 0.0])
    for t in range(T):
        moved = {}
        if on[0] <= t <= on[1]:
            moved = {"right_elbow": (-.16, 1.3, .25), "right_wrist": tuple(target - [0, 0, 0.06]),
                     "right_hand": tuple(target)}
        j[t, 0] = place(standing(**moved), 0.0, 0.0, False)
        j[t, 1] = p2
    return j


def to_camera(j: np.ndarray, depth: float = 4.0) -> np.ndarray:
    """y-up world -> OpenCV camera (x right, y down, z forward): rotate 180 degrees about x, push away."""
    c = j.copy()
    c[..., 1] *= -1
    c[..., 2] *= -1
    c[..., 2] += depth
    return c
