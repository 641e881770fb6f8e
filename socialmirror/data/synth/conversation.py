"""Talking at a distance: two people face each other a metre or two apart and take turns speaking, the speaker
gesturing in front of the chest (beats and small sweeps of one or both hands), the listener still, with a nod
now and then. No contact is annotated (the hands stay far apart; the synthesizer checks they do).

Real footage of pairs is mostly this: people who interact without touching, farther apart than the contact
kinds put them (README, pose coverage: the pair's median distance 0.64 m in the contact kinds against 1.08 m
on the CMU pair).
"""
from __future__ import annotations

import numpy as np

from socialmirror.data.synth.motion import Reach, arm_length, envelope, facing_dir
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


__all__ = ["talk"]
