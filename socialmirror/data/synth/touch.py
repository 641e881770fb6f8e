"""Touching the other's body: push (and a shove that knocks the other back a step), passing an object hand to
hand, dancing holding both hands, a pat on the shoulder, an arm round the shoulders, a hug.

Contacts (person 1's joint, person 2's joint), for a right-handed draw (left-handed draws mirror them):
- push: (left_wrist, right_collar) and (right_wrist, left_collar): both palms on the other's upper chest
  below the collarbones while the other rocks back;
- shove: the same contacts; pushed harder, the other stumbles back a step as the hands leave;
- pass_object: (right_wrist, right_wrist): the object itself is not modelled; the giver's open hand
  (palm up) and the taker's hand (palm down, from above) touch while it changes hands, and that touch
  is the annotated contact;
- dance: (left_wrist, right_wrist) and (right_wrist, left_wrist): both hands held palm to palm while the
  couple sways;
- pat_shoulder: (right_wrist, left_shoulder): the palm comes down on the top of the other's shoulder and pats
  it two to four times (annotated on the frames the palm is down), from the front or standing beside them;
- arm_around: (right_wrist, right_shoulder): side by side, facing one way, the arm goes round the other's back
  and neck and the hand comes down on the top of their far shoulder (of the same name), where it rests;
- hug: (left_wrist, right_shoulder) and (right_wrist, left_shoulder): face to face, the taller's arms over the
  other's shoulders, the other's round the taller's chest to the back, where no joint of the vocabulary lies
  (made, not annotated).
"""
from __future__ import annotations

import numpy as np

from socialmirror.data.synth.clearance import separation_along
from socialmirror.data.synth.motion import Reach, envelope, facing_dir, min_jerk, pose_person
from socialmirror.data.synth.stage import J, UP, Plan, Retry, Stage, horizontal, look_at_each_other, other, stand_facing


def push(st: Stage) -> Plan:
    return _push(st, "push", stumble=False)


def shove(st: Stage) -> Plan:
    """A push hard enough that the other stumbles back a step as the hands leave the chest."""
    return _push(st, "shove", stumble=True)


def _push(st: Stage, action: str, stumble: bool) -> Plan:
    """Both palms on the other's upper chest while the other rocks back; with ``stumble``, the other is knocked
    back a step as the hands leave (``_stumble_back``; its draws come after the push's own, so a seed draws the
    same push either way)."""
    pe = st.people
    # both palms flat on a chest a forearm away leave little room: the two square up to each other
    st.postures = [p.scaled(0.3) for p in st.postures]
    a, b, ya, yb = st.face_to_face(0.5 * pe[0].arm + 0.14 * pe[1].scale + 0.1 + st.u(-0.02, 0.05), jitter=0.12)
    pa, pb = st.stand(0, a, ya), st.stand(1, b, yb)
    on0, on1, off0, off1 = st.phases((0.4, 0.7), (0.5, 1.0), release=(0.4, 0.6))
    w = envelope(st.T, on0, on1, off0, off1)
    # the push: person 2 rocks back (feet planted) while both hands are on; person 1 leans in
    shove = envelope(st.T, on1 - 2, off0, off0 + 0.2 * st.fps, off1 + 0.6 * st.fps)
    f0 = horizontal(b - a)
    pb.lean[:, 0] -= 0.08 * shove
    pb.root -= f0 * (0.03 * pe[1].scale * shove)[:, None]
    if stumble:
        _stumble_back(st, pb, f0, off0 + 0.3 * (off1 - off0), pe[1].scale)
    # reaching down to a smaller partner means bending forward more
    down = max(0.0, (pe[0].rest.height - pe[1].rest.height) / pe[0].rest.height)
    pa.lean[:, 0] += 0.08 + 0.06 * shove + 0.8 * down * w
    pa.root += f0 * (0.03 * pe[0].scale * w)[:, None]
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    look_at_each_other(pa, pb, ja, jb)
    f = horizontal(jb[:, J["spine3"]] - ja[:, J["spine3"]])
    lat = np.cross(UP, f)
    contacts = []
    for side in ("left", "right"):
        theirs = other(side)  # facing each other: my left hand meets the other's right side
        col = jb[:, J[f"{theirs}_collar"]]
        medial = lat * (1.0 if side == "right" else -1.0)  # toward person 1's midline
        # palms flat on the upper chest, below the collarbones, fingers up and out (clear of the chin)
        tgt = col - f * 0.05 * pe[1].scale - UP * 0.01 * pe[0].scale - medial * 0.02 * pe[1].scale
        pole = -UP - 0.8 * medial - 0.3 * f
        pa.reaches[side] = Reach(side, tgt, w, pole, contact=(f"{side}_wrist", f"{theirs}_collar"),
                                 fingers=UP - 0.9 * medial - 0.1 * f, palm=f, approach=-f * 0.05)
        contacts.append((f"{side}_wrist", f"{theirs}_collar"))
    return Plan(action, [pa, pb], contacts, "right", {})


def _stumble_back(st: Stage, p, back: np.ndarray, start: float, scale: float) -> None:
    """Person ``p`` knocked back along ``back`` (a unit horizontal vector) from frame ``start``: the pelvis
    moves back 0.15-0.3 body scales, one foot steps back that far (a quick minimum-jerk step, lifted a few
    centimetres at its middle) and the other follows; each foot stays planted outside its step."""
    distance = st.u(0.15, 0.3) * scale
    duration = st.u(0.22, 0.3) * st.fps  # one step, frames
    first = int(st.rng.random() < 0.5)  # the foot that steps first
    t = np.arange(st.T, dtype=np.float64)
    for order, foot in enumerate((first, 1 - first)):
        phase = np.clip((t - start - order * 0.6 * duration) / duration, 0.0, 1.0)
        p.ankles[:, foot] += back * (distance * min_jerk(phase))[:, None]
        p.ankles[:, foot, 1] += 0.05 * scale * np.sin(np.pi * phase) ** 2
    p.root += back * (distance * min_jerk((t - start) / (1.6 * duration)))[:, None]


def pass_object(st: Stage) -> Plan:
    side = st.side()
    side_b = st.side()
    pe = st.people
    pa, pb, ja, jb = stand_facing(st, 0.55 * (pe[0].arm + pe[1].arm) + 0.05 + st.u(-0.03, 0.06), jitter=0.2,
                                   lean_forward=True)
    # the giver reaches first, the taker follows; both hold while the object changes hands
    on0, on1, off0, off1 = st.phases((0.5, 0.8), (0.3, 0.6), start=(0.1, 0.3))
    lag = st.u(0.1, 0.25) * st.fps
    wa = envelope(st.T, on0, on1, off0, off1)
    wb = envelope(st.T, on0 + lag, on1, off0, off1 + 0.1 * st.fps)
    f = horizontal(jb[:, J["pelvis"]] - ja[:, J["pelvis"]])
    lat = np.cross(UP, f)
    meet = 0.5 * (ja[:, J["spine3"]] + jb[:, J["spine3"]])
    meet[:, 1] = 0.5 * (ja[:, J["pelvis"], 1] + jb[:, J["pelvis"], 1]) + 0.2 * min(pe[0].scale, pe[1].scale)
    # giver: palm up, hand toward the taker; taker: palm down, from above, fingers toward the giver
    ta = meet - f * 0.05 * pe[0].scale - UP * 0.02
    tb = meet + f * 0.05 * pe[1].scale + UP * 0.02
    sa = 1.0 if side == "right" else -1.0
    sb = 1.0 if side_b == "right" else -1.0
    ta = ta - lat * sa * 0.02
    tb = tb + lat * sb * 0.02
    pa.reaches[side] = Reach(side, ta, wa, -UP - 0.7 * lat * -sa, contact=(f"{side}_wrist", f"{side_b}_wrist"),
                             share=0.5, fingers=f, palm=UP, approach=-UP * 0.05)
    pb.reaches[side_b] = Reach(side_b, tb, wb, -UP + 0.7 * lat * -sb, contact=(f"{side_b}_wrist", f"{side}_wrist"),
                               share=0.5, fingers=-f, palm=-UP, approach=UP * 0.06)
    for p, sd, w in ((pa, side, wa), (pb, side_b, wb)):  # flat hands
        curl = np.zeros((st.T, 2))
        curl[:, 0 if sd == "left" else 1] = -0.55 * w
        p.hand_curl = curl
    return Plan("pass_object", [pa, pb], [(f"{side}_wrist", f"{side_b}_wrist")], side, {"side_b": side_b})


def dance(st: Stage) -> Plan:
    pe = st.people
    a, b, ya, yb = st.face_to_face(0.5 * (pe[0].arm + pe[1].arm) + 0.1 + st.u(-0.03, 0.05), jitter=0.08)
    pa, pb = st.stand(0, a, ya), st.stand(1, b, yb)
    # the couple sways side to side together (pelvis, chest) and bounces in the knees
    freq = st.u(0.5, 0.9)
    t = np.arange(st.T) / st.fps
    on0, on1, off0, off1 = st.phases((0.4, 0.7), (1.5, 3.0), start=(0.05, 0.2))
    w = envelope(st.T, on0, on1, off0, off1)
    sway = np.sin(2 * np.pi * freq * t) * w
    f0 = horizontal(b - a)
    lat0 = np.cross(UP, f0)
    for k, p in enumerate((pa, pb)):
        p.root += lat0 * (0.03 * pe[k].scale * sway)[:, None]
        p.root[:, 1] -= 0.012 * pe[k].scale * (0.5 + 0.5 * np.cos(4 * np.pi * freq * t)) * w
        p.lean[:, 2] += (0.06 if k == 0 else -0.06) * sway  # side bend toward the same world side
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    look_at_each_other(pa, pb, ja, jb)
    f = horizontal(jb[:, J["pelvis"]] - ja[:, J["pelvis"]])
    lat = np.cross(UP, f)
    mid = 0.5 * (ja[:, J["spine3"]] + jb[:, J["spine3"]])
    y = 0.5 * (ja[:, J["pelvis"], 1] + jb[:, J["pelvis"], 1]) + 0.12 * min(pe[0].scale, pe[1].scale)
    swing = lat * (0.06 * sway)[:, None]
    contacts = []
    for side in ("left", "right"):
        sgn = 1.0 if side == "left" else -1.0  # person 1's left hand is on +lat
        width = 0.17 * min(pe[0].scale, pe[1].scale)
        meet = mid + lat * sgn * width + swing
        meet[:, 1] = y
        theirs = other(side)
        # person 1's palms up, person 2's palms resting on them from above
        ta = meet - f * 0.05 * pe[0].scale - UP * 0.02
        tb = meet + f * 0.05 * pe[1].scale + UP * 0.02
        pa.reaches[side] = Reach(side, ta, w, -UP + 0.6 * lat * sgn - 0.3 * f,
                                 contact=(f"{side}_wrist", f"{theirs}_wrist"), share=0.5,
                                 fingers=f, palm=UP, approach=-UP * 0.05)
        pb.reaches[theirs] = Reach(theirs, tb, w, -UP + 0.6 * lat * sgn + 0.3 * f,
                                   contact=(f"{theirs}_wrist", f"{side}_wrist"), share=0.5,
                                   fingers=-f, palm=-UP, approach=UP * 0.05)
        contacts.append((f"{side}_wrist", f"{theirs}_wrist"))
    for p in (pa, pb):  # open, flat hands: curled fingertips would meet before the palms
        p.hand_curl = np.stack([-0.55 * w, -0.55 * w], -1)
    return Plan("dance", [pa, pb], contacts, "right", {})


def pat_shoulder(st: Stage) -> Plan:
    """Person 1 puts one hand on the top of person 2's near shoulder and pats it. Facing each other (three times
    in five) a right hand meets the partner's left shoulder; otherwise person 2 stands at person 1's acting
    side, both facing about the same way, and the hand lands on their near shoulder: the partner's shoulder on
    the other side word either way. Person 2 turns the head to person 1."""
    side = st.side()
    theirs = other(side)
    pe = st.people
    # shoulder to shoulder: the arm nearly straight in front, bent at the elbow beside; one lower is reached by
    # leaning over (a child), from the front only. A hand coming up to a higher shoulder does not lie flat on it
    # (the wrist stays 15 cm or more from the joint): the drawn people are redrawn, cheaply, before any posing.
    rise = pe[1].shoulder_height - pe[0].shoulder_height
    if not -0.6 < rise < 0.1:
        raise Retry("the partner's shoulder is out of reach")
    facing = abs(rise) > 0.25 or st.rng.random() < 0.6
    lean = st.u(0.1, 0.25)  # facing, person 1 leans in: the shoulder comes forward by about half the chest

    def horizontal_reach(share: float) -> float:
        reach3d = min(max(share * pe[0].arm + st.u(-0.03, 0.04), abs(rise) + 0.1), 0.93 * pe[0].arm)
        return float(np.sqrt(max(reach3d ** 2 - rise ** 2, 0.0))) + 0.02
    apart = max(horizontal_reach(0.82), 0.3 * (pe[0].scale + pe[1].scale))  # facing: bodies keep their depth
    if facing and np.hypot(apart - lean * 0.5 * pe[0].scale, max(rise, 0.0)) > 0.92 * pe[0].arm:
        if abs(rise) > 0.25:  # a short arm: from beside, or not at all
            raise Retry("the partner's shoulder is out of reach")
        facing = False
    reach = apart if facing else horizontal_reach(0.68)
    if facing:
        a, b, ya, yb = st.face_to_face(reach, jitter=0.15)
    else:  # beside: person 2 at person 1's acting side, a shoulder width further out, a step ahead or behind
        sign = -1.0 if side == "right" else 1.0  # the body's left is +x at yaw 0
        a = np.zeros(3)
        width = 0.19 * (pe[0].scale + pe[1].scale)
        b = np.array([sign * (max(reach, 0.1) + width), 0.0, st.u(-0.05, 0.1) * pe[0].scale])
        ya = st.u(-0.2, 0.2)
        yb = ya + st.u(-0.15, 0.15)
    pa, pb = st.stand(0, a, ya), st.stand(1, b, yb)
    on0, on1, off0, off1 = st.phases((0.4, 0.7), (0.8, 1.6), start=(0.1, 0.3))
    w = envelope(st.T, on0, on1, off0, off1)
    bend = min(0.5, 1.2 * max(0.0, -rise - 0.1)) * w  # rad: over a smaller partner, forward or sideways
    if facing:
        pa.lean[:, 0] += bend + lean * w
    else:
        pa.lean[:, 2] += bend * (-1.0 if side == "right" else 1.0)
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    look_at_each_other(pa, pb, ja, jb)
    if not facing:  # person 1 looks at the shoulder they touch; person 2 glances back at person 1's head
        pa.look_at = jb[:, J[f"{theirs}_shoulder"]]
    shoulder = jb[:, J[f"{theirs}_shoulder"]]
    toward = horizontal(shoulder - ja[:, J[f"{side}_shoulder"]])  # the hand's way in, person 1 -> shoulder
    if facing:  # the elbow down and out to the acting side
        pole = -UP + 0.8 * np.cross(UP, toward) * (1.0 if side == "left" else -1.0) - 0.2 * toward
    else:  # the partner is on the acting side: the elbow down, a little out towards them and back
        pole = -UP + 0.3 * toward - 0.3 * facing_dir(pa.yaw)
    # the heel of the hand over the shoulder joint, the palm flat on its top and the fingers over it: the
    # refinement brings it down to the skin (a wrist further back leaves the joint centres 15 cm apart)
    target = shoulder + toward * 0.02 * pe[1].scale + UP * 0.08 * pe[1].scale
    # pats: the hand lifts 3-6 cm and comes down again, two to four times over the hold
    t = np.arange(st.T)
    pats = st.rng.integers(2, 5)
    hold = max(off0 - on1, 1.0)
    phase = np.clip((t - on1) / hold, 0.0, 1.0)
    bounce = np.sin(np.pi * pats * phase) ** 2 * (w > 0.97)
    lift = UP[None] * (st.u(0.03, 0.06) * pe[0].scale * bounce)[:, None]
    down = (w > 0.97) & (bounce < 0.1)
    pa.reaches[side] = Reach(side, target, w, pole,
                             contact=(f"{side}_wrist", f"{theirs}_shoulder"), fingers=toward,
                             palm=-UP, approach=UP * 0.25 - toward * 0.05, lift=lift, contact_frames=down, closing=-UP)
    curl = np.zeros((st.T, 2))
    curl[:, 0 if side == "left" else 1] = -0.3 * w  # an open, slightly cupped hand
    pa.hand_curl = curl
    return Plan("pat_shoulder", [pa, pb], [(f"{side}_wrist", f"{theirs}_shoulder")], side,
                {"side_b": theirs, "facing": facing})


def arm_around(st: Stage) -> Plan:
    """Side by side, facing the same way (a photo, a walk's pause): person 1, the taller, puts one arm round
    person 2's back and rests the hand on the top of person 2's far shoulder, and holds it there (the two drawn
    people swap roles where the second is taller). Person 2 stands on that side, a little ahead, so that the arm
    passes behind their back and neck; person 1 leans in (down to a smaller partner). Both look ahead; person 1
    glances at person 2 while the arm goes round."""
    side = st.side()  # person 1's arm round person 2; both face one way, so the far shoulder has the same name
    if st.people[1].shoulder_height > st.people[0].shoulder_height:
        st.swap_people()  # the taller one's arm goes round the shorter one
    pe = st.people
    rise = pe[1].shoulder_height - pe[0].shoulder_height
    if rise < -0.45:
        raise Retry("the partner is too short to put an arm round")
    st.postures = [p.scaled(0.3) for p in st.postures]
    yaw = st.u(-np.pi, np.pi)
    fwd = facing_dir(yaw)
    sign = 1.0 if side == "left" else -1.0
    out = np.cross(UP, fwd) * sign  # from person 1 towards person 2 (the body's left is cross(up, forward))
    width = 0.16 * (pe[0].scale + pe[1].scale) + st.u(0.0, 0.04)
    ahead = st.u(0.24, 0.3) * pe[1].scale
    pa = st.stand(0, np.zeros(3), yaw + st.u(-0.1, 0.1))
    pb = st.stand(1, out * width + fwd * ahead, yaw + st.u(-0.15, 0.15))
    on0, on1, off0, off1 = st.phases((0.5, 0.9), (1.0, 2.2), start=(0.1, 0.3))
    w = envelope(st.T, on0, on1, off0, off1)
    down = max(0.0, -rise - 0.05)
    pa.lean[:, 2] += sign * (0.04 + 0.9 * down) * w  # towards the partner, more over a smaller one
    pa.lean[:, 0] += 0.4 * down * w
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    ahead_point = 0.5 * (ja[:, J["head"]] + jb[:, J["head"]]) + fwd * 3.0
    pa.look_at = np.where((w > 0.05)[:, None] & (w < 0.95)[:, None], jb[:, J["head"]], ahead_point)
    pb.look_at = ahead_point
    shoulder = jb[:, J[f"{side}_shoulder"]]
    # the palm on the top of the far shoulder, the fingers over its front, the elbow behind the partner's back
    target = shoulder + (UP * 0.05 - fwd * 0.03 - out * 0.04) * pe[1].scale
    reach = np.linalg.norm(target - ja[:, J[f"{side}_shoulder"]], axis=-1)[w > 0.97]
    if reach.max() > 0.97 * pe[0].arm:
        raise Retry("the partner's far shoulder is out of reach")
    pole = -fwd + 0.3 * UP
    # the hand goes round behind the partner's back and neck, held high until the arm is nearly round, and comes
    # straight down onto the shoulder at the end: a hand that brushes the back of the shoulder on its way touches
    # with the wrist still far from the joint (a contact the synthesizer rejects)
    lift = (UP * 0.12 * (1.0 - w ** 8)[:, None] - fwd * 0.1 * (1.0 - w ** 2)[:, None]) * pe[1].scale
    pa.reaches[side] = Reach(side, target, w, pole, contact=(f"{side}_wrist", f"{side}_shoulder"),
                             fingers=out + 0.6 * fwd - 0.3 * UP, palm=-UP, approach=UP * 0.3 - fwd * 0.1, lift=lift,
                             closing=-UP)
    curl = np.zeros((st.T, 2))
    curl[:, 0 if side == "left" else 1] = -0.3 * w  # an open hand, cupped over the shoulder
    pa.hand_curl = curl
    return Plan("arm_around", [pa, pb], [(f"{side}_wrist", f"{side}_shoulder")], side, {"side_b": side})


def _trunk(pe) -> tuple[np.ndarray, np.ndarray]:
    """Rest vertices of the trunk and head (pelvis, spine, collars, neck, head and the caps of the shoulders, not
    the arms below them) and the joint that poses each rigidly (its dominant one; the shoulder caps the chest's,
    spine3, as the arms are not posed yet)."""
    rest, rj = pe.rest.vertices, pe.rest.joints
    dominant = pe.rest.dominant
    core = [J[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar")]
    keep = np.isin(dominant, core)
    for side in ("left", "right"):  # the shoulder's cap, which a hug presses against the other's chest
        sh = J[f"{side}_shoulder"]
        keep |= (dominant == sh) & (rest[:, 1] > rj[sh, 1] - 0.06 * pe.scale)
    return rest[keep], np.where(np.isin(dominant[keep], core), dominant[keep], J["spine3"])


def _posed_trunk(p, trunk: tuple[np.ndarray, np.ndarray], frames: np.ndarray) -> np.ndarray:
    """(len(frames), n, 3) the trunk and head as ``pose_person`` poses them (each vertex rigidly with its joint)."""
    v, joint = trunk
    _, jt, gt = pose_person(p)
    rel = v - p.rest_joints[joint]
    return jt[frames][:, joint] + np.einsum("tnij,nj->tni", gt[frames][:, joint], rel)


def hug(st: Stage) -> Plan:
    """A hug face to face, arms over and under: person 1, the taller by 0.12-0.35 m of shoulder height, leans
    over person 2 and puts both arms over person 2's shoulders, the hands on the tops of the shoulder blades;
    person 2's arms go under them, round person 1's chest, the hands on person 1's back as near the spine as
    they reach, the cheek turned to person 1's chest. The clip opens as the arms come round, wide open, and
    ends as they let go. The two stand where their trunks and heads just meet, each with one foot back and the
    other between the other's feet; the arms find their way round the other body themselves
    (``Reach.around``). Annotated: person 1's hands on person 2's shoulders; person 2's hands lie on the back,
    where no joint of Table 1's vocabulary is (refined onto the skin there, not annotated)."""
    if st.people[1].shoulder_height > st.people[0].shoulder_height:
        st.swap_people()  # the taller one's arms go over
    pe = st.people
    rise = pe[1].shoulder_height - pe[0].shoulder_height
    # over and under: the under arms pass below the other's armpits and the shorter's head below the taller's
    # chin, so the shoulders differ by 0.12 m or more (two of a height hug criss-cross, not modelled); by more
    # than 0.35 m the taller has to kneel (not modelled)
    if not -0.35 < rise < -0.12:
        raise Retry("the two are not of heights for a hug over and under")
    st.postures = [p.scaled(0.3) for p in st.postures]
    side = st.side()  # person 2's cheek turns to this side of person 1's chest; the foot of this name steps back
    sign = 1.0 if side == "left" else -1.0
    shift = st.u(0.0, 0.04) * 0.5 * (pe[0].scale + pe[1].scale)  # a few centimetres off centre
    yaw = st.u(-np.pi, np.pi)
    f1 = facing_dir(yaw)
    left1 = np.cross(UP, f1)
    start = 0.25 * (pe[0].scale + pe[1].scale) + 0.3  # a first guess; the trunks' gap sets it below
    pa = st.stand(0, np.zeros(3), yaw + st.u(-0.05, 0.05))
    pb = st.stand(1, f1 * start + left1 * sign * shift, yaw + np.pi + st.u(-0.05, 0.05))
    foot = 0 if side == "left" else 1
    for p, k in ((pa, 0), (pb, 1)):  # each steps one foot back, the other between the other's feet (toes apart)
        p.ankles[:, foot] -= facing_dir(p.yaw[0]) * 0.13 * pe[k].scale
    # the clip opens as the arms go round and ends as they let go: standing this close, arms that hang at the
    # sides would be in the other's body (people step into a hug with their arms open)
    reach, release = st.u(0.6, 1.0) * st.fps, st.u(0.5, 0.8) * st.fps
    on0 = -st.u(0.4, 0.55) * reach
    off1 = st.T - 1 + st.u(0.4, 0.55) * release
    w = envelope(st.T, on0, on0 + reach, off1 - release, off1)
    pa.lean[:, 0] += st.u(0.12, 0.25) * w  # the taller leans over the other, whose head stays back
    pb.lean[:, 0] += st.u(0.0, 0.08) * w
    hold = np.nonzero(w > 0.97)[0]
    if len(hold) == 0:
        raise Retry("the hug is never held")

    def look() -> None:  # person 1 over person 2's head; person 2 the cheek to person 1's chest
        ja, _ = pa.torso_fk()
        jb, _ = pb.torso_fk()
        pa.look_at = ja[:, J["head"]] + (f1 - 0.3 * left1 * sign) * 2.0
        pb.look_at = jb[:, J["head"]] - (0.2 * f1 - left1 * sign) * 2.0
    look()
    _close_in(pa, pb, pe, f1, hold)
    look()
    contacts = _arms_over(pa, pb, pe, f1, w)
    _arms_under(pa, pb, pe, f1, w, hold)
    curl = np.stack([-0.3 * w, -0.3 * w], -1)  # open hands, a little cupped over the back
    pa.hand_curl, pb.hand_curl = curl, curl.copy()
    return Plan("hug", [pa, pb], contacts, side, {"side_b": side})


def _close_in(pa, pb, pe, f1: np.ndarray, hold: np.ndarray) -> None:
    """Person 2 moved along ``f1`` (person 1's facing) to where the two leaning trunks and heads, as posed, just
    meet (4 mm apart where they come closest over the hold)."""
    probe = hold[:: max(1, len(hold) // 6)]
    trunk_a = _posed_trunk(pa, _trunk(pe[0]), probe)
    trunk_b = _posed_trunk(pb, _trunk(pe[1]), probe)
    gaps = [separation_along(a, b, f1) for a, b in zip(trunk_a, trunk_b)]
    if any(g is None for g in gaps):
        raise Retry("the chests do not face each other")
    closer = (min(gaps) - 0.004) * f1
    pb.root -= closer
    pb.ankles -= closer


def _arms_over(pa, pb, pe, f1: np.ndarray, w: np.ndarray) -> list[tuple[str, str]]:
    """Person 1's arms over person 2's shoulders, the hands on the tops of the shoulder blades; their contacts."""
    f2, left1 = -f1, np.cross(UP, f1)
    jb, _ = pb.torso_fk()
    lift = (UP * 0.12 * (1.0 - w ** 8)[:, None] - f2 * 0.06 * (1.0 - w ** 2)[:, None]) * pe[1].scale
    contacts = []
    for arm in ("left", "right"):
        out1 = left1 if arm == "left" else -left1
        theirs = other(arm)  # facing: person 1's left hand goes to person 2's right side
        # the wrist on the top of the shoulder's back, the hand down the shoulder blade (the back bulges below
        # the shoulders, so the fingers point down and a little back)
        top = 0.9 * jb[:, J[f"{theirs}_shoulder"]] + 0.1 * jb[:, J[f"{theirs}_collar"]]
        target = top - (f2 * 0.03 - UP * 0.01) * pe[1].scale  # contact refinement lifts the hand onto the skin
        pa.reaches[arm] = Reach(arm, target, w, out1 - 0.5 * UP, contact=(f"{arm}_wrist", f"{theirs}_shoulder"),
                                fingers=-UP - 0.4 * f2, palm=f2 - 0.4 * UP, closing=f2 - 0.4 * UP,
                                approach=(out1 * 0.25 + UP * 0.1) * pe[0].scale, lift=lift, around=True)
        contacts.append((f"{arm}_wrist", f"{theirs}_shoulder"))
    return contacts


def _arms_under(pa, pb, pe, f1: np.ndarray, w: np.ndarray, hold: np.ndarray) -> None:
    """Person 2's arms under person 1's, round the chest to the back: each hand as near the spine as the arm
    reaches over the hold (no joint of the vocabulary lies there: the touch is made, not annotated)."""
    left1 = np.cross(UP, f1)
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    spine = ja[:, J["spine2"]]
    for arm in ("left", "right"):
        out2 = -left1 if arm == "left" else left1  # person 2's own side of this name
        shoulder = jb[:, J[f"{arm}_shoulder"]]
        for x in np.linspace(0.08, 0.17, 6) * pe[0].scale:  # round the back (an ellipse) from the spine out
            depth = 0.1 * pe[0].scale * np.sqrt(max(1.0 - (x / (0.17 * pe[0].scale)) ** 2, 0.0))
            target = spine + out2 * x - f1 * (depth + 0.03 * pe[0].scale)
            if np.linalg.norm(target - shoulder, axis=-1)[hold].max() < 0.97 * pe[1].arm:
                break
        else:
            raise Retry("the partner's back is out of reach")
        closing = horizontal(spine - target)
        # the fingers level and round the back (across the palm's normal, which points at the spine): fingers
        # aimed at the spine from a hand on the flank would go into the body
        fingers = -out2 - np.sum(-out2 * closing, -1, keepdims=True) * closing
        pb.reaches[arm] = Reach(arm, target, w, out2 - 0.3 * UP, contact=(f"{arm}_wrist", "spine2"),
                                fingers=fingers, palm=closing, closing=closing, approach=out2 * 0.2 * pe[1].scale,
                                around=True)
