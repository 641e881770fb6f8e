"""Fighting: a punch blocked by the other's raised forearm; a front kick the other evades; a hook the other ducks.

Contacts (person 1's joint, person 2's joint), right-handed draw:
- punch_block: (right_wrist, left_wrist): person 1's fist lands on person 2's guarding forearm next to the wrist
  (the fist is the wrist's surface patch: the 19-joint list of Table 1 has no hand joint). Left-handed draws
  mirror it.
- kick_dodge: none: person 1 chambers a knee and snaps the foot out at the other's middle; person 2 sways
  back out of reach, guard up, and the foot stops short (placed so; the synthesizer's interpenetration check
  and the tests, which keep the two bodies 5 cm apart or more, see that it does).
- hook_duck: none: person 1 swings a hook at the other's head, the fist sweeping a level arc from the side
  across; person 2 ducks under it (knees bent, trunk forward, guard up) and comes back up.
"""
from __future__ import annotations

import numpy as np

from socialmirror.data.synth.motion import Reach, envelope, facing_dir, min_jerk
from socialmirror.data.synth.stage import J, UP, Plan, Stage, horizontal, look_at_each_other, other


def punch_block(st: Stage) -> Plan:
    side = st.side()
    guard = other(side)  # a punch from my right comes at the other's left side
    pe = st.people
    a, b, ya, yb = st.face_to_face(0.62 * pe[0].arm + 0.2 * pe[1].scale + 0.2 + st.u(-0.02, 0.05), jitter=0.1)
    pa, pb = st.stand(0, a, ya), st.stand(1, b, yb)
    T = st.T
    # the defender raises the guard first, the attacker punches fast and pulls back
    g0, g1, p0, p1, h1, r1 = st.timeline((0.1, 0.4), (0.3, 0.45), (0.0, 0.2), (0.22, 0.35), (0.1, 0.25), (0.3, 0.45))
    wg = envelope(T, g0, g1, T + 5, T + 6)
    wp = envelope(T, p0, p1, h1, r1)
    pa.lean[:, 0] += 0.1 * wp
    pa.lean[:, 1] += (-0.25 if side == "right" else 0.25) * wp  # the shoulder turns into the punch
    pb.lean[:, 0] -= 0.05 * wg
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    look_at_each_other(pa, pb, ja, jb)
    f = horizontal(jb[:, J["spine3"]] - ja[:, J["spine3"]])  # attacker -> defender
    lat = np.cross(UP, f)  # person 1's left = person 2's right
    gsign = 1.0 if guard == "left" else -1.0  # person 2's left is -lat
    head = jb[:, J["head"]]
    # guard: forearm upright in front of the face on the guard side, palm toward the face
    gw = head - f * 0.2 * pe[1].scale - lat * gsign * 0.05 * pe[1].scale - UP * 0.02 * pe[1].scale
    pb.reaches[guard] = Reach(guard, gw, wg, -UP - lat * gsign * 0.8, fingers=UP, palm=f)
    # punch: the fist travels straight at the guard and lands beside the defender's wrist
    pw = gw - f * (0.12 * pe[0].scale) + UP * 0.02
    ssign = 1.0 if side == "left" else -1.0
    pa.reaches[side] = Reach(side, pw, wp, -UP + lat * ssign * 0.6 - f * 0.3,
                             contact=(f"{side}_wrist", f"{guard}_wrist"), fingers=f, palm=-UP, closing=f)
    curl = np.zeros((T, 2))
    curl[:, 0 if side == "left" else 1] = 1.4 * np.clip(wp * 2, 0, 1)
    pa.hand_curl = curl
    return Plan("punch_block", [pa, pb], [(f"{side}_wrist", f"{guard}_wrist")], side, {"side_b": guard})


def kick_dodge(st: Stage) -> Plan:
    """A front kick that misses: person 1 lifts the knee (the chamber), snaps the foot out at hip height towards
    person 2's middle and brings it back down where it started; person 2 sees it coming, raises both hands and
    sways back, so the toes stop 10-25 cm short. Knees and hips bend far beyond what the standing scripts draw
    (a chambered knee about 90 degrees)."""
    side = st.side()  # the kicking leg
    k = 0 if side == "left" else 1
    pe = st.people
    leg = pe[0].leg
    extension = st.u(0.75, 0.9) * leg  # the ankle's reach in front of the hip at full extension
    sway_back = 0.06 * pe[1].scale
    # toes a fifth of a height past the ankle, the defender's belly 12% of theirs in front of the pelvis
    distance = extension + 0.2 * pe[0].scale + 0.12 * pe[1].scale + st.u(0.1, 0.25) - sway_back
    a, b, ya, yb = st.face_to_face(distance, jitter=0.12)
    pa, pb = st.stand(0, a, ya), st.stand(1, b, yb)
    T, fps = st.T, st.fps
    # chamber (knee up), snap out, hold a blink, back to the chamber, foot down
    c0, c1, e1, h1, r1, d1 = st.timeline((0.1, 0.4), (0.25, 0.4), (0.12, 0.2), (0.05, 0.15), (0.15, 0.25), (0.25, 0.4))
    chamber = envelope(T, c0, c1, r1, d1)  # knee up
    snap = envelope(T, c1, e1, h1, r1)  # foot out (within the chamber)
    fwd = horizontal(b - a)
    lateral = np.cross(UP, facing_dir(ya)) * (1.0 if side == "left" else -1.0)
    hip = pa.root + lateral * abs(pe[0].rest.joints[J[f"{side}_hip"], 0])  # (T, 3)
    foot = pa.ankles[:, k].copy()
    chambered = foot + UP * 0.45 * leg + fwd * 0.15 * leg  # the ankle under the lifted knee
    kicked = hip + fwd * extension - UP * 0.1 * leg
    pa.ankles[:, k] = foot + chamber[:, None] * (chambered - foot) + snap[:, None] * (kicked - chambered)
    knee_pole = facing_dir(pa.foot_yaw)  # (T, 2, 3): the standing knee over its foot, as in every stance
    knee_pole[:, k] = fwd + 0.6 * UP  # the kicking knee comes up and forward
    pa.knee_pole = knee_pole
    follow = np.zeros((T, 2))
    follow[:, k] = chamber  # the lifted foot turns with the shin, toes up at the snap, flat again on the floor
    pa.foot_follow = follow
    pa.lean[:, 0] -= 0.2 * snap + 0.05 * chamber  # the body leans back against the kick
    pa.root -= fwd * (0.04 * leg * snap)[:, None]
    # the defender: hands up and the upper body swaying back as the foot comes
    react = envelope(T, c0 + 0.1 * fps, c1 + 0.05 * fps, r1, d1 + 0.2 * fps)
    pb.lean[:, 0] -= 0.25 * react
    pb.root += fwd * (sway_back * react)[:, None]
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    look_at_each_other(pa, pb, ja, jb)
    f = horizontal(ja[:, J["spine3"]] - jb[:, J["spine3"]])  # defender -> attacker
    _hands_up(pb, jb[:, J["head"]], f, pe[1].scale, react, ahead=0.25, apart=0.1, below=0.12)
    return Plan("kick_dodge", [pa, pb], [], side, {"side_b": other(side)})


def _hands_up(p, head: np.ndarray, towards: np.ndarray, scale: float, weight: np.ndarray, ahead: float,
              apart: float, below: float) -> None:
    """Both of ``p``'s hands up in front of the face (``head`` (T, 3)), palms towards the attacker (``towards``,
    unit horizontal, (3,) or (T, 3)): ``ahead`` in front of the head, ``apart`` to each side and ``below`` it, in body
    scales, while ``weight`` is up; the elbows down and out."""
    lat = np.cross(UP, towards)  # the defender's left
    for hand in ("left", "right"):
        sgn = 1.0 if hand == "left" else -1.0
        guard = head + (towards * ahead + lat * sgn * apart - UP * below) * scale
        p.reaches[hand] = Reach(hand, guard, weight, -UP + lat * sgn * 0.8, fingers=UP, palm=towards)


def hook_duck(st: Stage) -> Plan:
    """A hook that misses: person 1 turns the shoulders into a wide swing, the fist sweeping a level arc at the
    height of person 2's head, from the side round to the middle and past; person 2 sees it coming, bends the
    knees (the pelvis down by a quarter to a third of the leg), leans forward with both hands up by the face,
    lets the fist pass over the head and comes back up. The deepest knee and hip bends of the standing fights
    (the real fighters of the CloseInt clip crouch like this)."""
    side = st.side()  # the swinging arm
    pe = st.people
    sgn = 1.0 if side == "left" else -1.0
    reach = 0.95 * pe[0].arm + 0.15 * pe[0].scale  # chest to fist with the arm out
    a, b, ya, yb = st.face_to_face(reach + st.u(0.0, 0.08) * pe[1].scale, jitter=0.1)
    pa, pb = st.stand(0, a, ya), st.stand(1, b, yb)
    T = st.T
    # the defender ducks just before the swing reaches the middle and rises after it has passed
    s0, s1, r1 = st.timeline((0.3, 0.7), (0.3, 0.45), (0.3, 0.5))
    swing = min_jerk((np.arange(T) - s0) / max(s1 - s0, 1.0))  # 0 -> 1 over the swing
    arm_out = envelope(T, s0 - 0.25 * st.fps, s0, s1, r1)
    duck = envelope(T, s0 - 0.3 * st.fps, s0 + 0.1 * (s1 - s0), s1 + 0.1 * st.fps, r1 + 0.2 * st.fps)
    depth = st.u(0.25, 0.33) * pe[1].leg
    pb.root[:, 1] -= depth * duck
    pb.lean[:, 0] += 0.3 * duck
    pa.lean[:, 1] += -sgn * (0.3 - 0.6 * swing) * arm_out  # the shoulders wind up, then turn through
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    look_at_each_other(pa, pb, ja, jb)
    f = horizontal(b - a)  # attacker -> defender
    lat = np.cross(UP, f) * sgn  # towards the swinging arm's side
    # the fist's level arc round the chest, from 70 degrees out to 25 degrees past the middle, at the height of
    # the defender's head as it stood
    angle = np.radians(70.0 - 95.0 * swing)[:, None]
    chest = ja[:, J["spine3"]]
    fist = chest + reach * (np.cos(angle) * f + np.sin(angle) * lat)
    fist[:, 1] = np.minimum(jb[0, J["head"], 1], ja[:, J["head"], 1] + 0.05)
    pa.reaches[side] = Reach(side, fist, arm_out, -UP * 0.3 + lat * 0.8 - f * 0.3, fingers=f - lat * 0.5,
                             palm=-UP)
    curl = np.zeros((T, 2))
    curl[:, 0 if side == "left" else 1] = 1.4 * np.clip(arm_out * 2, 0, 1)
    pa.hand_curl = curl
    _hands_up(pb, jb[:, J["head"]], -f, pe[1].scale, duck, ahead=0.15, apart=0.08, below=0.05)
    return Plan("hook_duck", [pa, pb], [], side, {"side_b": other(side)})
