"""Fighting: a punch blocked by the other's raised forearm.

Contact (person 1's joint, person 2's joint), right-handed draw: (right_wrist, left_wrist): person 1's
fist lands on person 2's guarding forearm next to the wrist (the fist is the wrist's surface patch: the
19-joint list of Table 1 has no hand joint). Left-handed draws mirror it.
"""
from __future__ import annotations

import numpy as np

from socialmirror.data.synth.motion import Reach, envelope
from socialmirror.data.synth.stage import J, UP, Plan, Stage, horizontal, look_at_each_other, other


def punch_block(st: Stage) -> Plan:
    side = st.side()
    guard = other(side)  # a punch from my right comes at the other's left side
    pe = st.people
    a, b, ya, yb = st.face_to_face(0.62 * pe[0].arm + 0.2 * pe[1].scale + 0.2 + st.u(-0.02, 0.05), jitter=0.1)
    pa, pb = st.stand(0, a, ya), st.stand(1, b, yb)
    T, fps = st.T, st.fps
    # the defender raises the guard first, the attacker punches fast and pulls back
    g0 = st.u(0.1, 0.4) * fps
    g1 = g0 + st.u(0.3, 0.45) * fps
    p0 = g1 + st.u(0.0, 0.2) * fps
    p1 = p0 + st.u(0.22, 0.35) * fps
    h1 = p1 + st.u(0.1, 0.25) * fps
    r1 = h1 + st.u(0.3, 0.45) * fps
    if r1 > T - 2:
        k = (T - 2) / r1
        g0, g1, p0, p1, h1, r1 = (x * k for x in (g0, g1, p0, p1, h1, r1))
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
