"""Walking: side by side, past each other, and one leading the other by the hand, with a procedural gait with
planted stance feet.

Each foot alternates stance (fixed on the floor: it never slides) and swing (a minimum-jerk arc to
the next footprint); the pelvis moves at constant speed with the vertical bob and lateral shift of a
real gait, the arms swing against the legs. Both people keep the same speed, each with the cadence of
their own leg length, so a child takes more steps than an adult.

Contacts (person 1's joint, person 2's joint), for a right-handed draw (left-handed draws mirror them):
- walk_together, walk_past: none;
- lead_by_hand: (right_wrist, left_wrist): person 1 walks ahead and leads person 2, who follows behind on
  person 1's right, by the hand, the leader's hand reaching back and the follower's forward, held throughout.
"""
from __future__ import annotations

import numpy as np

from socialmirror.body.skeleton import JOINT_INDEX
from socialmirror.data.synth.motion import PersonMotion, Reach, envelope, facing_dir, min_jerk
from socialmirror.data.synth.stage import UP, Plan, Retry, Stage, other

J = JOINT_INDEX


def _gait(st: Stage, k: int, start: np.ndarray, yaw: float, speed: float) -> PersonMotion:
    pe = st.people[k]
    T, fps, s = st.T, st.fps, pe.scale
    rj = pe.rest.joints
    step = 0.62 * pe.leg  # one step (half a stride)
    Ts = step / speed  # seconds per step
    swing = 0.8 * Ts
    t = np.arange(T) / fps
    t0 = st.u(0.0, 2 * Ts)  # gait phase at the first frame
    fwd = facing_dir(yaw)
    lat = np.cross(UP, fwd)  # the body's left
    ankle_h = rj[J["left_ankle"], 1] - pe.rest.sole
    width = abs(rj[J["left_hip"], 0]) * st.u(0.9, 1.1)
    ankles = np.zeros((T, 2, 3))
    arm = np.zeros((T, 2))
    for i, sgn in enumerate((1.0, -1.0)):  # left, right
        offset = i * Ts  # the right foot swings one step after the left
        # swing number n of this foot starts at n*2Ts + offset and lands at S(land) + 0.45 step
        tt = t + t0 - offset
        n = np.floor(tt / (2 * Ts))
        local = tt - n * 2 * Ts  # time since this cycle's swing started
        land_prev = speed * ((n - 1) * 2 * Ts + offset + swing) + 0.45 * step
        land_next = land_prev + 2 * step
        u = np.clip(local / swing, 0.0, 1.0)
        along = land_prev + (land_next - land_prev) * min_jerk(u)
        lift = 0.06 * s * np.sin(np.pi * u) ** 2
        pos = start[None] + fwd[None] * (along - speed * t0)[:, None] + lat[None] * sgn * width
        pos[:, 1] = ankle_h + lift
        ankles[:, i] = pos
        arm[:, 1 - i] = 0.3 * np.sin(2 * np.pi * tt / (2 * Ts))  # the opposite arm swings with the leg
    root = start[None] + fwd[None] * (speed * t)[:, None]
    root[:, 1] = pe.pelvis_height - 0.035 * s - 0.012 * s * np.cos(2 * np.pi * (t + t0) / Ts)
    root += lat[None] * (0.012 * s * np.sin(np.pi * (t + t0) / Ts))[:, None]
    yaw_t = np.full(T, yaw) + 0.04 * np.sin(np.pi * (t + t0) / Ts)
    lean = np.zeros((T, 3))
    lean[:, 0] = 0.06 + 0.01 * np.cos(2 * np.pi * (t + t0) / Ts)
    lean[:, 1] = -0.06 * np.sin(np.pi * (t + t0) / Ts)  # chest counter-rotates to the pelvis
    p = PersonMotion(T=T, rest_joints=rj, sole=pe.rest.sole, root=root, yaw=yaw_t, lean=lean,
                     pelvis_tilt=np.zeros((T, 3)), ankles=ankles, foot_yaw=np.full((T, 2), yaw),
                     hand_axes=pe.rest.hand_axes, arm_swing=arm)
    return p


def walk_together(st: Stage) -> Plan:
    pe = st.people
    yaw = st.u(-np.pi, np.pi)
    speed = st.u(0.75, 1.15) * min(1.0, min(pe[0].scale, pe[1].scale) ** 0.5)
    gap = 0.28 * (pe[0].scale + pe[1].scale) + st.u(0.0, 0.25)
    lat = np.cross(UP, facing_dir(yaw))
    side = 1.0 if st.rng.random() < 0.5 else -1.0  # person 2 on person 1's left (+1) or right
    start = -facing_dir(yaw) * speed * st.T / st.fps / 2
    pa = _gait(st, 0, start - lat * side * gap / 2, yaw, speed)
    pb = _gait(st, 1, start + lat * side * gap / 2 + facing_dir(yaw) * st.u(-0.1, 0.1), yaw, speed)
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    # glance at each other now and then, otherwise look ahead
    glance = np.clip(np.sin(2 * np.pi * st.u(0.2, 0.4) * np.arange(st.T) / st.fps + st.u(0, 6)), 0, 1)[:, None]
    ahead = facing_dir(yaw)[None] * 3.0
    pa.look_at = (ja[:, J["head"]] + ahead) * (1 - glance) + jb[:, J["head"]] * glance
    pb.look_at = (jb[:, J["head"]] + ahead) * (1 - glance) + ja[:, J["head"]] * glance
    return Plan("walk_together", [pa, pb], [], "right", {"partner_side": "left" if side > 0 else "right"})


def walk_past(st: Stage) -> Plan:
    """Two people walking towards each other on parallel lines and passing, shoulder to shoulder a body width
    or more apart, at the middle of the clip (or a little before or after): their distance runs from a few
    metres to under one and back, all within one clip."""
    pe = st.people
    yaw = st.u(-np.pi, np.pi)
    fwd = facing_dir(yaw)
    lat = np.cross(UP, fwd)
    speeds = [st.u(0.8, 1.3) * min(1.0, p.scale ** 0.5) for p in pe]
    offset = 0.3 * (pe[0].scale + pe[1].scale) + st.u(0.05, 0.5)  # lateral, pelvis to pelvis
    side = 1.0 if st.rng.random() < 0.5 else -1.0  # person 2 passes on person 1's left (+1) or right
    meet = st.u(0.35, 0.65) * st.T / st.fps  # seconds until they are level
    pa = _gait(st, 0, -fwd * speeds[0] * meet, yaw, speeds[0])
    pb = _gait(st, 1, fwd * speeds[1] * meet + lat * side * offset, yaw + np.pi, speeds[1])
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    # each looks at the other while they approach, then ahead once the other is beside or behind
    for p, own, theirs, heading in ((pa, ja, jb, fwd), (pb, jb, ja, -fwd)):
        ahead = own[:, J["head"]] + heading[None] * 3.0
        toward = np.einsum("ti,i->t", theirs[:, J["head"]] - own[:, J["head"]], heading)
        glance = np.clip(toward / 1.5, 0.0, 1.0)[:, None]
        p.look_at = ahead * (1 - glance) + theirs[:, J["head"]] * glance
    return Plan("walk_past", [pa, pb], [], "right", {"partner_side": "left" if side > 0 else "right"})


def lead_by_hand(st: Stage) -> Plan:
    """Person 1 walks ahead and leads person 2 by the hand: person 2 follows half a step to a step behind, on
    the side of person 1's leading hand, holding it with the hand on person 1's side (the other name: both face
    one way). The two hands meet between them below the lower shoulder, the leader's arm reaching back and the
    follower's forward, held from the first frames to the last; the held arms do not swing. The leader leans
    into the walk and looks ahead, glancing back; the follower, pulled along, leans back a little and looks at
    the leader."""
    pe = st.people
    side = st.side()  # the leader's hand; the follower holds it with the hand of the other name
    side_b = other(side)
    yaw = st.u(-np.pi, np.pi)
    fwd = facing_dir(yaw)
    out = np.cross(UP, fwd) * (1.0 if side == "left" else -1.0)  # from the leader towards the follower's line
    speed = st.u(0.6, 1.0) * min(1.0, min(pe[0].scale, pe[1].scale) ** 0.5)
    arms = np.array([pe[0].arm, pe[1].arm])
    behind = st.u(0.6, 1.1) * arms.min()  # pelvis to pelvis along the way: the held hands within both arms' reach
    apart = 0.22 * (pe[0].scale + pe[1].scale) + st.u(0.0, 0.1)
    start = -fwd * speed * st.T / st.fps / 2
    pa = _gait(st, 0, start + fwd * behind / 2, yaw, speed)
    pb = _gait(st, 1, start - fwd * behind / 2 + out * apart, yaw, speed)
    pa.lean[:, 0] += 0.03  # into the walk, pulling
    pb.lean[:, 0] -= 0.03  # pulled along
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    sa, sb = ja[:, J[f"{side}_shoulder"]], jb[:, J[f"{side_b}_shoulder"]]
    half = 0.5 * np.linalg.norm((sb - sa)[:, [0, 2]], axis=-1)  # each arm's horizontal share of the gap
    if half.max() > 0.8 * arms.min():
        raise Retry("the two are too far apart to hold hands")
    # the hands as low as each arm lets them hang towards the other (0.9 of the arm from the shoulder)
    drop = np.sqrt((0.9 * arms[None]) ** 2 - half[:, None] ** 2)  # (T, 2)
    meet = 0.5 * (sa + sb)
    meet[:, 1] = np.maximum(sa[:, 1] - drop[:, 0], sb[:, 1] - drop[:, 1])
    w = envelope(st.T, 0.0, st.u(0.2, 0.4) * st.fps, st.T + 10.0, st.T + 20.0)  # grasped at the start, held
    for k, (p, sd, toward, scale) in enumerate(((pa, side, -fwd, pe[0].scale), (pb, side_b, fwd, pe[1].scale))):
        outward = out * (1.0 if k == 0 else -1.0)  # the holding hand's side of the body
        # each palm faces its own body (as a hanging hand's does), so the hands cross: the leader's a little
        # further out than the follower's, palm against palm, the fingers pointing at the other, down
        target = meet + outward * 0.015 * scale - toward * 0.02 * scale
        pole = -fwd + 0.5 * outward  # the elbow back and out (a hanging arm's points nowhere along it)
        p.reaches[sd] = Reach(sd, target, w, pole, contact=(f"{sd}_wrist", f"{other(sd)}_wrist"), share=0.5,
                              fingers=toward - 0.5 * UP, palm=-outward, approach=outward * 0.05 * scale)
        p.arm_swing[:, 0 if sd == "left" else 1] = 0.0
    ahead = fwd[None] * 3.0
    glance = np.clip(np.sin(2 * np.pi * st.u(0.2, 0.4) * np.arange(st.T) / st.fps + st.u(0, 6)), 0, 1)[:, None]
    pa.look_at = (ja[:, J["head"]] + ahead) * (1 - glance) + jb[:, J["head"]] * glance
    pb.look_at = ja[:, J["head"]].copy()
    return Plan("lead_by_hand", [pa, pb], [(f"{side}_wrist", f"{side_b}_wrist")], side, {"side_b": side_b})
