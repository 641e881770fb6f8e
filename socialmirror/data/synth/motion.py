"""Procedural motion of one person: timing curves, rotations, two-bone IK for arms and legs, idle sway.

Everything here works on numpy arrays batched over frames (T, ...), in the body-model conventions of
``socialmirror.body.base`` (y up, a body faces +z, +x is its left; local rotations in world-aligned rest
frames). Arms and legs are posed analytically rather than with the optimiser of ``body.ik``: a
two-bone solve is exact (the wrist lands on its target to the micrometre, which is what makes scripted
contacts touch) and costs microseconds per frame, and choosing the elbow/knee from a pole direction
keeps them on their hinge's natural side (elbows down and out, knees forward), i.e. within joint limits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from socialmirror.body.kinematics import forward_kinematics
from socialmirror.body.skeleton import JOINT_INDEX, NUM_JOINTS

J = JOINT_INDEX


# ------------------------------------------------------------------------------------------ timing

def min_jerk(x: np.ndarray) -> np.ndarray:
    """Minimum-jerk ease 0 -> 1 on [0, 1] (zero velocity and acceleration at both ends): how people
    move a hand between two points."""
    x = np.clip(x, 0.0, 1.0)
    return x ** 3 * (10 - 15 * x + 6 * x * x)


def envelope(T: int, on0: float, on1: float, off0: float, off1: float) -> np.ndarray:
    """(T,) weight rising 0 -> 1 over frames [on0, on1], holding, falling over [off0, off1] (frames may be
    fractional; an ``off0`` past the end holds to the last frame)."""
    t = np.arange(T, dtype=np.float64)
    up = min_jerk((t - on0) / max(on1 - on0, 1e-6))
    down = 1.0 - min_jerk((t - off0) / max(off1 - off0, 1e-6))
    return np.minimum(up, down)


# ---------------------------------------------------------------------------------------- rotations

def axis_angle(aa: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors -> (..., 3, 3) (Rodrigues)."""
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    k = aa / np.maximum(theta, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    K = np.stack([np.stack([zero, -kz, ky], -1), np.stack([kz, zero, -kx], -1),
                  np.stack([-ky, kx, zero], -1)], -2)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def rot_y(angle: np.ndarray | float) -> np.ndarray:
    """Rotation about the vertical axis: yaw ``angle`` turns a body's +z toward +x for positive angles."""
    a = np.asarray(angle, dtype=np.float64)
    return axis_angle(np.stack([np.zeros_like(a), a, np.zeros_like(a)], -1))


def facing_dir(yaw: np.ndarray | float) -> np.ndarray:
    """World direction (…, 3) a body with this yaw faces."""
    a = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.sin(a), np.zeros_like(a), np.cos(a)], -1)


def yaw_towards(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    d = np.asarray(dst) - np.asarray(src)
    return np.arctan2(d[..., 0], d[..., 2])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frame(a: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Orthonormal frame (…, 3, 3) with columns a, h, a x h (a, h unit and orthogonal)."""
    return np.stack([a, h, np.cross(a, h)], -1)


# -------------------------------------------------------------------------------------- two-bone IK

def two_bone_ik(root: np.ndarray, parent_rot: np.ndarray, upper0: np.ndarray, lower0: np.ndarray,
                target: np.ndarray, pole: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analytic IK of a two-bone chain (shoulder-elbow-wrist or hip-knee-ankle).

    root (T, 3) world position of the chain's first joint; parent_rot (T, 3, 3) global rotation of its
    parent; upper0/lower0 (3,) rest bone vectors; target (T, 3) for the end joint; pole (T, 3) direction
    the middle joint should bend toward. Returns the local rotations of the first and middle joints
    (T, 3, 3 each) and the reached end position (T, 3) (equal to the target when within reach). The
    middle joint stays a hinge about its rest bend axis, so elbows and knees never twist or hyperextend.
    """
    T = root.shape[0]
    l1, l2 = float(np.linalg.norm(upper0)), float(np.linalg.norm(lower0))
    d = target - root
    dist = np.linalg.norm(d, axis=-1)
    dist_c = np.clip(dist, abs(l1 - l2) + 1e-3, 0.9995 * (l1 + l2))
    t_hat = _unit(d)
    p = pole - np.sum(pole * t_hat, -1, keepdims=True) * t_hat
    bad = np.linalg.norm(p, axis=-1) < 1e-6
    if bad.any():  # pole along the reach: any perpendicular will do
        alt = np.cross(t_hat[bad], np.array([1.0, 0.0, 0.0]))
        p[bad] = alt
    p_hat = _unit(p)
    cos_a = np.clip((l1 * l1 + dist_c ** 2 - l2 * l2) / (2 * l1 * dist_c), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a ** 2)
    mid = root + l1 * (cos_a[:, None] * t_hat + sin_a[:, None] * p_hat)
    end = root + dist_c[:, None] * t_hat
    d1 = _unit(mid - root)
    h = _unit(np.cross(p_hat, t_hat))
    h = _unit(h - np.sum(h * d1, -1, keepdims=True) * d1)
    a0 = upper0 / l1
    h0 = _unit(np.cross(upper0, lower0))
    g_root = _frame(d1, h) @ _frame(a0, h0).T  # global rotation of the first joint
    g = np.einsum("tji,tj->ti", g_root, _unit(end - mid))  # desired lower direction in rest coordinates
    f0 = lower0 / l2
    phi = np.arctan2(np.einsum("i,ti->t", h0, np.cross(np.broadcast_to(f0, g.shape), g)), g @ f0)
    r_mid = axis_angle(h0[None] * phi[:, None])
    r_root = np.swapaxes(parent_rot, -1, -2) @ g_root
    del T
    return r_root, r_mid, end


# ------------------------------------------------------------------------------------------ persons

SPINE = ("spine1", "spine2", "spine3")


@dataclass
class Reach:
    """One arm's scripted goal: the wrist follows ``target`` with weight ``weight`` (0 = idle arm).

    ``contact``: (joint of this person, joint of the partner) that this reach makes touch; the
    synthesizer refines the target so the two surfaces meet. ``share`` is this reach's part of that
    correction (two hands meeting split it).
    """

    side: str  # "left" | "right"
    target: np.ndarray  # (T, 3) world
    weight: np.ndarray  # (T,)
    pole: np.ndarray  # (T, 3) or (3,) world direction the elbow points to
    contact: tuple[str, str] | None = None
    share: float = 1.0
    correction: np.ndarray | None = None  # (T, 3) added by contact refinement
    fingers: np.ndarray | None = None  # (T, 3) or (3,) world direction the fingers should point
    palm: np.ndarray | None = None  # (T, 3) or (3,) world direction the palm should face
    approach: np.ndarray | None = None  # (T, 3) or (3,) side offset of the path near the goal
    lift: np.ndarray | None = None  # (T, 3) extra offset of the goal (e.g. the hand rising between pats)
    contact_frames: np.ndarray | None = None  # (T,) bool: frames refinement pulls to touching
    closing: np.ndarray | None = None  # (T, 3) or (3,) direction the hand closes in (default: palm)
    # the arm goes round the partner's body (a hug): the synthesizer turns the elbow about the shoulder-wrist
    # line, frame by frame, to where the arm stays clearest of the partner's surface (``clearance.clearest_turns``)
    around: bool = False


# A hanging wrist's distance from the shoulder, as a share of the arm's length, in the rest pose's posture.
IDLE_REACH = 0.93


@dataclass
class PersonMotion:
    """Everything that drives one person's pose, built by an interaction script."""

    T: int
    rest_joints: np.ndarray  # (24, 3)
    sole: float  # lowest rest vertex's y relative to the pelvis
    root: np.ndarray  # (T, 3) pelvis position
    yaw: np.ndarray  # (T,) facing
    lean: np.ndarray  # (T, 3) spine bend as axis-angle in the body frame (x: forward, y: twist, z: side)
    pelvis_tilt: np.ndarray  # (T, 3) axis-angle in the body frame
    ankles: np.ndarray  # (T, 2, 3) world targets for the left/right ankle
    foot_yaw: np.ndarray  # (T, 2)
    look_at: np.ndarray | None = None  # (T, 3) world point the head turns to
    reaches: dict[str, Reach] = field(default_factory=dict)
    hand_curl: np.ndarray | None = None  # (T, 2) finger curl (rad) left/right: fists
    arm_swing: np.ndarray | None = None  # (T, 2) idle arm swing angle (walking)
    knee_pole: np.ndarray | None = None  # (T, 2, 3)
    # (T, 2) left/right: how much of the shin's turn the foot follows (0: flat on the floor along its yaw; 1: at
    # its rest angle to the shin, as a kicking foot whose shin comes forward, within the ankle's limit)
    foot_follow: np.ndarray | None = None
    hand_axes: dict | None = None  # side -> (rest finger dir, rest palm normal)
    idle_reach: tuple[float, float] = (IDLE_REACH, IDLE_REACH)  # left/right hanging wrist from the shoulder / arm

    def local_rotations_torso(self) -> np.ndarray:
        """(T, 24, 3, 3) with pelvis and spine set, everything else identity."""
        R = np.broadcast_to(np.eye(3), (self.T, NUM_JOINTS, 3, 3)).copy()
        R[:, 0] = rot_y(self.yaw) @ axis_angle(self.pelvis_tilt)
        share = (0.4, 0.35, 0.25)
        for name, s in zip(SPINE, share):
            R[:, J[name]] = axis_angle(self.lean * s)
        return R

    def fk(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j, g = forward_kinematics(torch.as_tensor(self.rest_joints), torch.as_tensor(R))
        return j.numpy() + self.root[:, None], g.numpy()

    def torso_fk(self) -> tuple[np.ndarray, np.ndarray]:
        """World joints (T, 24, 3) and global rotations with only the pelvis and spine posed: where the torso
        is before the arms move (scripts aim the partner's reaches at it and turn heads toward it)."""
        return self.fk(self.local_rotations_torso())


def arm_length(rest: np.ndarray, side: str = "left") -> float:
    """Shoulder to wrist along the arm (m), from the rest joints (24, 3)."""
    sh, el, wr = (rest[J[f"{side}_{name}"]] for name in ("shoulder", "elbow", "wrist"))
    return float(np.linalg.norm(el - sh) + np.linalg.norm(wr - el))


def leg_length(rest: np.ndarray, side: str = "left") -> float:
    """Hip to ankle along the leg (m), from the rest joints (24, 3)."""
    hip, knee, ankle = (rest[J[f"{side}_{name}"]] for name in ("hip", "knee", "ankle"))
    return float(np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee))


def idle_wrist_target(joints: np.ndarray, glob: np.ndarray, side: str, rest: np.ndarray,
                      swing: np.ndarray | None, reach: float = IDLE_REACH) -> tuple[np.ndarray, np.ndarray]:
    """Relaxed arm: the wrist hangs beside the thigh, slightly forward, ``reach`` of the arm's length from the
    shoulder (``IDLE_REACH``: the elbow bent 43 degrees; 1: straight); returns target and elbow pole."""
    s = 1.0 if side == "left" else -1.0
    sh = J[f"{side}_shoulder"]
    arm = arm_length(rest, side)
    body = glob[:, 0]  # pelvis orientation
    down_local = np.array([0.22 * s, -0.96, 0.10])
    if swing is not None:
        a = swing
        down_local = np.stack([np.full_like(a, 0.22 * s), -np.cos(a), np.sin(a)], -1)
    d = np.einsum("tij,tj->ti", body, np.broadcast_to(_unit(down_local), (body.shape[0], 3)))
    target = joints[:, sh] + reach * arm * d
    pole = np.einsum("tij,j->ti", body, np.array([0.4 * s, 0.0, -1.0]))
    return target, pole


def _log(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(*R.shape[:-2], 3)


def orient_hand(g_elbow: np.ndarray, lower0: np.ndarray, axes: tuple[np.ndarray, np.ndarray],
                fingers: np.ndarray, palm: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn the hand to point its fingers along ``fingers`` with the palm facing ``palm`` (world).

    The forearm's share of the turn is its twist about its own axis (pronation/supination, kept within
    +-1.4 rad as the IK joint limits allow) and goes into the elbow rotation, which leaves the wrist
    where the arm IK put it; the rest bends the wrist (at most 1.2 rad). Blended in with ``weight``.
    Returns the elbow's extra local twist and the wrist's local rotation, (T, 3, 3) each."""
    T = g_elbow.shape[0]
    fd0, pn0 = axes
    f = _unit(np.broadcast_to(fingers, (T, 3)).astype(np.float64))
    pm = np.broadcast_to(palm, (T, 3)).astype(np.float64)
    pm = pm - np.sum(pm * f, -1, keepdims=True) * f
    flat = np.linalg.norm(pm, axis=-1) < 1e-6  # palm along the fingers: any perpendicular will do
    if flat.any():
        pm[flat] = np.cross(f[flat], [0.0, 1.0, 0.0]) + 1e-3 * np.cross(f[flat], [1.0, 0.0, 0.0])
    pm = _unit(pm)
    target = _frame(f, pm) @ _frame(fd0, _unit(pn0 - (pn0 @ fd0) * fd0)).T  # desired hand global rotation
    Q = np.swapaxes(g_elbow, -1, -2) @ target  # the wrist's local rotation without forearm twist
    if not np.all(np.isfinite(Q)):
        raise FloatingPointError("non-finite hand orientation")
    axis = lower0 / np.linalg.norm(lower0)
    rv = _log(Q)
    # swing-twist: the twist angle about the forearm axis
    ang = np.linalg.norm(rv, axis=-1)
    half = 0.5 * ang
    qv = np.where(ang[:, None] > 1e-9, rv / np.maximum(ang, 1e-9)[:, None], 0.0) * np.sin(half)[:, None]
    psi = 2.0 * np.arctan2(qv @ axis, np.cos(half))
    psi = (psi + np.pi) % (2 * np.pi) - np.pi
    psi = np.clip(psi, -1.4, 1.4) * weight
    twist = axis_angle(axis[None] * psi[:, None])
    rest_rv = _log(np.swapaxes(twist, -1, -2) @ Q)
    n = np.linalg.norm(rest_rv, axis=-1, keepdims=True)
    rest_rv = rest_rv * np.minimum(1.0, 1.2 / np.maximum(n, 1e-9)) * weight[:, None]
    return twist, axis_angle(rest_rv)


def pose_person(p: PersonMotion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local rotations (T, 24, 3, 3), world joints (T, 24, 3), global rotations (T, 24, 3, 3)."""
    R = p.local_rotations_torso()
    rest = p.rest_joints
    jt, gt = p.fk(R)
    # head: look at the target, split between neck and head, limited
    if p.look_at is not None:
        neck = jt[:, J["neck"]]
        d = np.einsum("tji,tj->ti", gt[:, J["spine3"]], p.look_at - neck)  # in the chest frame
        yaw = np.clip(np.arctan2(d[:, 0], d[:, 2]), -1.0, 1.0)
        pitch = np.clip(-np.arctan2(d[:, 1], np.hypot(d[:, 0], d[:, 2])), -0.5, 0.5)
        look = axis_angle(np.stack([pitch * 0.5, yaw * 0.5, np.zeros_like(yaw)], -1))
        R[:, J["neck"]] = look
        R[:, J["head"]] = look
    # arms
    for side in ("left", "right"):
        sh, el, wr = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
        swing = None if p.arm_swing is None else p.arm_swing[:, 0 if side == "left" else 1]
        target, pole = idle_wrist_target(jt, gt, side, rest, swing, p.idle_reach[0 if side == "left" else 1])
        reach = p.reaches.get(side)
        if reach is not None:
            w = reach.weight[:, None]
            goal = reach.target + (0 if reach.correction is None else reach.correction)
            if reach.lift is not None:
                goal = goal + reach.lift
            target = (1 - w) * target + w * goal
            if reach.approach is not None:
                # arrive from the side: the offset peaks mid-reach and vanishes (with zero velocity)
                # at the goal, so a palm closes onto the other palm rather than sliding along it
                target = target + 2.0 * np.sqrt(np.clip(w * (1 - w), 0.0, None)) * reach.approach
            pole = _unit((1 - w) * pole + w * np.broadcast_to(reach.pole, pole.shape))
        r_sh, r_el, _ = two_bone_ik(jt[:, sh], gt[:, J[f"{side}_collar"]], rest[el] - rest[sh],
                                    rest[wr] - rest[el], target, pole)
        R[:, sh], R[:, el] = r_sh, r_el
        if reach is not None and reach.fingers is not None and p.hand_axes is not None:
            g_el = gt[:, J[f"{side}_collar"]] @ r_sh @ r_el
            twist, r_wr = orient_hand(g_el, rest[wr] - rest[el], p.hand_axes[side], reach.fingers, reach.palm,
                                      reach.weight)
            R[:, el] = r_el @ twist
            R[:, wr] = r_wr
        if p.hand_curl is not None and p.hand_axes is not None:
            c = p.hand_curl[:, 0 if side == "left" else 1]
            fd0, pn0 = p.hand_axes[side]
            # fingers curl toward the palm: about fingers x palm
            R[:, J[f"{side}_hand"]] = axis_angle(_unit(np.cross(fd0, pn0))[None] * c[:, None])
    # legs: hips to planted ankles, knees forward, feet flat along their yaw
    jt, gt = p.fk(R)
    for k, side in enumerate(("left", "right")):
        hp, kn, an = J[f"{side}_hip"], J[f"{side}_knee"], J[f"{side}_ankle"]
        pole = facing_dir(p.foot_yaw[:, k]) if p.knee_pole is None else p.knee_pole[:, k]
        r_hp, r_kn, _ = two_bone_ik(jt[:, hp], gt[:, 0], rest[kn] - rest[hp], rest[an] - rest[kn],
                                    p.ankles[:, k], pole)
        R[:, hp], R[:, kn] = r_hp, r_kn
        g_knee = gt[:, 0] @ r_hp @ r_kn
        R[:, an] = np.swapaxes(g_knee, -1, -2) @ rot_y(p.foot_yaw[:, k])
        if p.foot_follow is not None:  # towards the rest angle to the shin (the identity): a share of the turn
            R[:, an] = axis_angle(_log(R[:, an]) * (1.0 - p.foot_follow[:, k, None]))
    jt, gt = p.fk(R)
    return R, jt, gt
