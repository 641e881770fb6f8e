"""Talking: at a distance, two people face each other a metre or two apart and take turns speaking, the speaker
gesturing in front of the chest (beats and small sweeps of one or both hands), the listener still, with a nod
now and then; or sitting side by side (on a seat that is not modelled), turned to each other, until one or both
stand up. No contact is annotated (the hands stay far apart; the synthesizer checks they do).

Real footage of pairs is mostly this: people who interact without touching, farther apart than the contact
kinds put them (README, pose coverage: the pair's median distance 0.64 m in the contact kinds against 1.08 m
on the CMU pair).
"""
from __future__ import annotations

import numpy as np

from socialmirror.data.synth.motion import Reach, arm_length, envelope, facing_dir, min_jerk
from socialmirror.data.synth.stage import J, UP, Plan, Stage, stand_facing


def _gesture(st: Stage, p, j: np.ndarray, side: str, weight: np.ndarray) -> Reach:
    """One hand gesturing in front of the chest while ``weight`` is up, the elbow bent (the hand about 0.6 of
    the arm's length from the shoulder): a resting point between the navel and the chest, beats up and down at
    1.5-3 Hz and a slow sweep sideways."""
    sign = 1.0 if side == "left" else -1.0
    fwd = facing_dir(p.yaw)
    lat = np.cross(UP, fwd)  # the body's left
    shoulder = j[:, J[f"{side}_shoulder"]]
    arm = arm_length(p.rest_joints, side)
    t = st.t
    beat = np.sin(2 * np.pi * st.u(1.5, 3.0) * t + st.u(0, 6.3))
    sweep = np.sin(2 * np.pi * st.u(0.2, 0.5) * t + st.u(0, 6.3))
    target = (shoulder + fwd * st.u(0.3, 0.45) * arm - UP * (st.u(0.35, 0.55) * arm - 0.05 * arm * beat)[:, None]
              + lat * sign * (st.u(0.0, 0.25) * arm + 0.12 * arm * sweep)[:, None])
    pole = -UP + lat * sign * 0.7 - fwd * 0.3
    return Reach(side, target, weight, pole)


def talk(st: Stage) -> Plan:
    pe = st.people
    distance = st.u(1.0, 2.0) * 0.5 * (pe[0].scale + pe[1].scale) + 0.3
    pa, pb, ja, jb = stand_facing(st, distance, jitter=0.45)
    T = st.T
    turn = st.u(0.35, 0.65) * T  # person 1 speaks first, then person 2
    spans = ((st.u(0.0, 0.1) * T, turn), (turn + st.u(0.0, 0.1) * T, T + 5.0))
    side = st.side()
    sides: list[str] = []
    for k, (p, j, (s0, s1)) in enumerate(zip((pa, pb), (ja, jb), spans)):
        ramp_frames = st.u(0.3, 0.6) * st.fps
        weight = envelope(T, s0, s0 + ramp_frames, s1 - ramp_frames, s1)
        own = side if k == 0 else st.side()
        sides.append(own)
        p.reaches[own] = _gesture(st, p, j, own, weight)
        if st.rng.random() < 0.5:  # both hands
            other_side = "left" if own == "right" else "right"
            p.reaches[other_side] = _gesture(st, p, j, other_side, weight * st.u(0.6, 1.0))
        listening = 1.0 - weight
        nod = np.clip(np.sin(2 * np.pi * st.u(0.3, 0.7) * st.t + st.u(0, 6.3)), 0.0, 1.0) ** 4
        p.look_at = p.look_at - UP * (0.12 * pe[k].scale * nod * listening)[:, None]
    return Plan("talk", [pa, pb], [], sides[0], {"side_b": sides[1], "distance": distance})


def _seated(st: Stage, p, k: int, fwd: np.ndarray, sitting: np.ndarray) -> None:
    """Person ``k`` (``p`` from ``Stage.stand``) seated while ``sitting`` (T,) is 1, standing where it is 0: the
    feet stay where they stand, the shins upright and the thighs level when seated (the hip at the knee's
    height, a thigh's length behind it), the hands on the thighs; rising, the trunk bends forward over the feet
    (most at mid-rise) and the pelvis moves up and forward onto them."""
    rest = st.people[k].rest.joints
    side = "left"
    thigh = float(np.linalg.norm(rest[J[f"{side}_knee"]] - rest[J[f"{side}_hip"]]))
    shin = float(np.linalg.norm(rest[J[f"{side}_ankle"]] - rest[J[f"{side}_knee"]]))
    hip_drop = float(rest[J["pelvis"], 1] - rest[J[f"{side}_hip"], 1])  # pelvis joint above the hip joints
    seat = p.ankles[:, :, 1].mean(1) + 0.97 * shin + hip_drop  # the pelvis joint's height when seated
    seated = p.root.copy()
    seated[:, 1] = seat
    seated -= fwd * 0.95 * thigh
    w = sitting[:, None]
    p.root = w * seated + (1 - w) * p.root
    p.lean[:, 0] += 0.55 * 4 * sitting * (1 - sitting) - 0.05 * sitting  # over the feet while rising
    p.knee_pole = np.broadcast_to(fwd + 0.3 * UP, (st.T, 2, 3)).copy()
    joints, _ = p.torso_fk()
    for sd in ("left", "right"):  # each hand resting on the middle of its thigh, palm down
        hip = joints[:, J[f"{sd}_hip"]]
        target = hip + fwd * 0.55 * thigh + UP * 0.08 * st.people[k].scale
        p.reaches[sd] = Reach(sd, target, sitting, -UP + 0.5 * np.cross(UP, fwd) * (1 if sd == "left" else -1))


def sit_and_stand(st: Stage) -> Plan:
    """Sitting side by side on one seat (not modelled), both facing one way and talking, heads turned to each
    other; then person 1 stands up (a rise of about a second), and in half the draws person 2 follows."""
    pe = st.people
    st.postures = [p.scaled(0.2) for p in st.postures]
    yaw = st.u(-np.pi, np.pi)
    fwd = facing_dir(yaw)
    lat = np.cross(UP, fwd)
    gap = 0.22 * (pe[0].scale + pe[1].scale) + st.u(0.08, 0.25)
    pa = st.stand(0, -lat * gap / 2, yaw + st.u(-0.15, 0.15))
    pb = st.stand(1, lat * gap / 2 + fwd * st.u(-0.05, 0.05), yaw + st.u(-0.15, 0.15))
    t = np.arange(st.T, dtype=np.float64)
    rise0 = st.u(0.3, 0.55) * st.T
    rises = [rise0, rise0 + st.u(0.4, 0.9) * st.fps if st.rng.random() < 0.5 else np.inf]
    for k, (p, start) in enumerate(zip((pa, pb), rises)):
        sitting = 1.0 - min_jerk((t - start) / (st.u(0.8, 1.3) * st.fps))
        _seated(st, p, k, fwd, sitting)
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    ahead = fwd[None] * 3.0
    for p, own, theirs in ((pa, ja, jb), (pb, jb, ja)):
        glance = np.clip(np.sin(2 * np.pi * st.u(0.15, 0.35) * st.t + st.u(0, 6.3)) + 0.3, 0, 1)[:, None]
        p.look_at = (own[:, J["head"]] + ahead) * (1 - glance) + theirs[:, J["head"]] * glance
    return Plan("sit_and_stand", [pa, pb], [], "right", {"partner_side": "left"})


__all__ = ["sit_and_stand", "talk"]
