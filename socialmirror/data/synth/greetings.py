"""Greetings: handshake, high-five, fist bump, waving at each other, pointing at the other.

Contacts (person 1's joint, person 2's joint), for a right-handed draw (left-handed draws mirror them):
- handshake: (right_wrist, right_wrist) while the hands clasp and pump;
- high_five: (right_wrist, left_wrist) for the few frames the palms slap;
- fist_bump: (right_wrist, right_wrist) for the few frames the fists meet;
- wave, point_at: none (the hands stay apart; the synthesizer checks they do).
"""
from __future__ import annotations

import numpy as np

from socialmirror.data.synth.motion import Reach, arm_length, envelope, facing_dir
from socialmirror.data.synth.stage import J, UP, Plan, Stage, horizontal, other, stand_facing


def _meeting(st: Stage) -> float:
    """Pelvis-to-pelvis distance for two people meeting hands in between, elbows bent."""
    pa, pb = st.people
    return 0.55 * (pa.arm + pb.arm) + 0.03 * (pa.scale + pb.scale) + st.u(-0.03, 0.06)


def _hand_meet(st: Stage, action: str, height: str, hold: tuple[float, float], gap: float,
               same_side: bool, pump: float = 0.0) -> Plan:
    """Both people bring one hand to a meeting point between them (the shared shape of a handshake,
    high-five and fist bump); ``gap`` is how far each wrist stays behind the meeting point."""
    side = st.side()
    side_b = side if same_side else other(side)
    pe = st.people
    pa, pb, ja, jb = stand_facing(st, _meeting(st), jitter=0.2, lean_forward=True)
    on0, on1, off0, off1 = st.phases((0.45, 0.8), hold)
    w = envelope(st.T, on0, on1, off0, off1)
    f = horizontal(jb[:, J["pelvis"]] - ja[:, J["pelvis"]])  # person 1 toward person 2
    sa = ja[:, J[f"{side}_shoulder"]]
    sb = jb[:, J[f"{side_b}_shoulder"]]
    mid = 0.5 * (sa + sb)
    if height == "waist":
        y = 0.5 * (ja[:, J["pelvis"], 1] + jb[:, J["pelvis"], 1]) + 0.12 * min(pe[0].scale, pe[1].scale)
    elif height == "chest":
        y = np.minimum(sa[:, 1], sb[:, 1]) - 0.12 * min(pe[0].scale, pe[1].scale)
    else:  # above the head, within both people's reach
        y = np.minimum(sa[:, 1] + 0.78 * pe[0].arm, sb[:, 1] + 0.78 * pe[1].arm) - 0.05
        y = np.minimum(y, np.maximum(ja[:, J["head"], 1], jb[:, J["head"], 1]) + 0.15)
    meet = mid.copy()
    meet[:, 1] = y
    if pump:
        t = np.arange(st.T)
        pump_w = envelope(st.T, on1, on1 + 2, off0 - 2, off0)
        meet[:, 1] += pump * pump_w * np.sin(2 * np.pi * st.u(2.0, 3.0) * (t - on1) / st.fps)
    lat = np.cross(UP, f)  # person 1's left
    # each hand's own-left direction in the world: person 1's is lat, person 2's is -lat
    own_left = {0: lat, 1: -lat}
    toward = {0: f, 1: -f}
    for k, (sd, p, scale) in enumerate(((side, pa, pe[0].scale), (side_b, pb, pe[1].scale))):
        medial = own_left[k] * (1.0 if sd == "right" else -1.0)  # a right palm faces its own left
        if height == "high":  # palm against palm, fingers up
            palm, fingers = toward[k], UP - 0.1 * toward[k]
            tgt = meet - toward[k] * 0.035 * scale - UP * 0.06 * scale
        else:  # palms (or the curled fingers of fists) side by side, thumbs up
            palm, fingers = medial, toward[k] - 0.15 * UP
            tgt = meet - toward[k] * gap * scale - medial * 0.035 * scale
        pole = -UP - 0.6 * medial - 0.3 * toward[k]
        sd_other = side_b if k == 0 else side
        r = Reach(sd, tgt, w, pole, contact=(f"{sd}_wrist", f"{sd_other}_wrist"), share=0.5,
                  fingers=fingers, palm=palm, approach=-palm * 0.06 * scale)
        p.reaches[sd] = r
        if height == "high":  # a flat, open hand
            curl = np.zeros((st.T, 2))
            curl[:, 0 if sd == "left" else 1] = -0.55 * w
            p.hand_curl = curl
    return Plan(action, [pa, pb], [(f"{side}_wrist", f"{side_b}_wrist")], side, {"side_b": side_b})


def handshake(st: Stage) -> Plan:
    return _hand_meet(st, "handshake", "waist", (0.8, 1.6), 0.03, same_side=True, pump=0.025)


def high_five(st: Stage) -> Plan:
    return _hand_meet(st, "high_five", "high", (0.05, 0.2), 0.025, same_side=False)


def fist_bump(st: Stage) -> Plan:
    plan = _hand_meet(st, "fist_bump", "chest", (0.08, 0.3), -0.01, same_side=True)
    for p in plan.persons:  # curl the fingers of the bumping hand into a fist
        side = next(iter(p.reaches))
        curl = np.zeros((st.T, 2))
        curl[:, 0 if side == "left" else 1] = 1.3 * np.clip(p.reaches[side].weight * 1.5, 0, 1)
        p.hand_curl = curl
    return plan


def _raise_hand(st: Stage, p, j, side: str, on: tuple[float, float, float, float], freq: float,
                point_to: np.ndarray | None = None) -> None:
    """Raise one hand beside the head and wave it (or point it at ``point_to``)."""
    pe_sign = 1.0 if side == "left" else -1.0
    body = np.stack([facing_dir(p.yaw), UP[None].repeat(st.T, 0)], 0)
    fwd, lat = body[0], np.cross(UP, body[0])
    sh = j[:, J[f"{side}_shoulder"]]
    arm = arm_length(p.rest_joints, side)
    w = envelope(st.T, *on)
    if point_to is None:
        t = np.arange(st.T) / st.fps
        osc = np.sin(2 * np.pi * freq * t) * 0.07 * arm
        target = sh + UP * 0.35 * arm + lat * pe_sign * (0.45 * arm + osc[:, None]) + fwd * 0.15 * arm
        pole = -UP + lat * pe_sign * 0.8
    else:
        d = point_to - sh
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        target = sh + d * 0.95 * arm
        pole = -UP + lat * pe_sign * 0.5
    p.reaches[side] = Reach(side, target, w, pole)


def wave(st: Stage) -> Plan:
    side = st.side()
    side_b = st.side()
    pa, pb, ja, jb = stand_facing(st, st.u(1.6, 3.2), jitter=0.3)
    on = st.phases((0.5, 0.8), (1.0, 2.0), start=(0.05, 0.3))
    delay = st.u(0.1, 0.5) * st.fps
    on_b = tuple(min(x + delay, st.T - 1.0) for x in on[:2]) + on[2:]
    _raise_hand(st, pa, ja, side, on, st.u(1.5, 2.5))
    _raise_hand(st, pb, jb, side_b, on_b, st.u(1.5, 2.5))
    return Plan("wave", [pa, pb], [], side, {"side_b": side_b})


def point_at(st: Stage) -> Plan:
    side = st.side()
    pa, pb, ja, jb = stand_facing(st, st.u(1.5, 3.0), jitter=0.35)
    on = st.phases((0.4, 0.7), (0.8, 1.8), start=(0.05, 0.3))
    _raise_hand(st, pa, ja, side, on, 0.0, point_to=jb[:, J["spine3"]])
    # the other person notices: leans back a little and tilts the head
    react = envelope(st.T, on[1], on[1] + 0.5 * st.fps, st.T + 5, st.T + 6)
    pb.lean[:, 0] -= 0.08 * react
    return Plan("point_at", [pa, pb], [], side, {})
