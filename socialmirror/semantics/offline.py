"""The offline annotator: contacts and the two sentences from the current 3D estimate (no VLM needed).

Input: both persons' SMPL-24 joints over one clip, ``(T, 2, 24, 3)`` in metres, in any frame whose up
direction is given (``up=(0, -1, 0)`` for the OpenCV camera frame of ``result.npz``, ``(0, 1, 0)`` or
``(0, 0, 1)`` for y-up / z-up world frames).

Contacts (over the 19 contact joints of Table 1):

* Gap. Joints are centres inside the body, so the gap between joint ``a`` of person 1 and ``b`` of person 2
  is their distance minus a body radius for each (``JOINT_RADIUS``: 9 cm for the head, 3 cm for a wrist, ...).
  A wrist also stands for its hand: its gap is the smaller of the wrist's and the SMPL hand joint's (the
  hand joint sits ~8 cm beyond the wrist, where palms actually meet).
* Candidates. In a frame only mutual nearest pairs are candidates (``b`` is ``a``'s nearest joint on person 2
  and ``a`` is ``b``'s nearest on person 1), so one touch gives one pair, not every joint around it.
* Hysteresis. A pair's contact starts when it is a candidate with gap below ``enter`` (0.10 m) and lasts while
  its gap stays below ``leave`` (0.15 m). Breaks of at most ``max_break`` frames are bridged, contacts shorter
  than ``min_frames`` dropped, and at most ``max_contacts`` kept (longest and tightest first).

Sentences (Table 1 style: "a person ..." for the speaker, "others"/"the other's" for the other one, each
from its own person's perspective, never "person 1"): what the geometry shows, namely motion (standing,
stepping toward or away, walking), how far apart the two are, whether they face each other, which hand
touches what (own hand on the other's body part, hands held, own body part touched), raised arms and
crouching. Wording varies among equivalent phrasings, chosen deterministically from ``seed`` and the clip.

Confidence (``contact_agreement``): see its docstring; the annotator fills every clip's confidence with it,
times ``image_agreement`` (do the contacts' joints meet in the image?) where it is given the 2D keypoints.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from socialmirror.body.skeleton import CONTACT_JOINTS, JOINT_INDEX, NUM_JOINTS
from socialmirror.semantics.annotations import ClipAnnotation, Contact

# Rough body radius around each joint centre (m): the gap between two joints is distance - r_a - r_b.
JOINT_RADIUS: dict[str, float] = {
    "pelvis": 0.10, "left_hip": 0.08, "right_hip": 0.08, "left_knee": 0.05, "right_knee": 0.05,
    "left_ankle": 0.04, "right_ankle": 0.04, "left_foot": 0.04, "right_foot": 0.04, "neck": 0.05,
    "left_collar": 0.06, "right_collar": 0.06, "head": 0.09, "left_shoulder": 0.05, "right_shoulder": 0.05,
    "left_elbow": 0.04, "right_elbow": 0.04, "left_wrist": 0.03, "right_wrist": 0.03,
}
# Extra points that stand for a contact joint (the wrist also stands for its hand).
_PROXIES: dict[str, tuple[str, ...]] = {"left_wrist": ("left_hand",), "right_wrist": ("right_hand",)}

_HANDS = ("left_wrist", "right_wrist")
_PART: dict[str, str] = {
    "pelvis": "waist", "left_hip": "waist", "right_hip": "waist", "left_knee": "left knee",
    "right_knee": "right knee", "left_ankle": "left ankle", "right_ankle": "right ankle",
    "left_foot": "left foot", "right_foot": "right foot", "neck": "neck", "left_collar": "left shoulder",
    "right_collar": "right shoulder", "head": "head", "left_shoulder": "left shoulder",
    "right_shoulder": "right shoulder", "left_elbow": "left arm", "right_elbow": "right arm",
    "left_wrist": "left hand", "right_wrist": "right hand",
}


@dataclass(frozen=True)
class OfflineConfig:
    enter: float = 0.10       # a contact starts below this gap (m)
    leave: float = 0.15       # ... and ends above this gap (m)
    min_frames: int = 2       # shorter contacts are dropped
    max_break: int = 1        # breaks of at most this many frames are bridged
    max_contacts: int = 6
    fps: float = 30.0         # only for walking speed in the sentences


def _check_joints(joints3d) -> np.ndarray:
    j = np.asarray(joints3d, dtype=np.float64)
    if j.ndim != 4 or j.shape[1] != 2 or j.shape[2] != NUM_JOINTS or j.shape[3] != 3:
        raise ValueError(f"joints3d must be (T, 2, {NUM_JOINTS}, 3) in SMPL-24 order, got shape {j.shape}")
    return j


def _unit(v: Sequence[float]) -> np.ndarray:
    u = np.asarray(v, dtype=np.float64).reshape(3)
    n = float(np.linalg.norm(u))
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"up must be a non-zero 3-vector, got {v!r}")
    return u / n


def contact_gaps(joints3d, joints: Sequence[str] = CONTACT_JOINTS) -> np.ndarray:
    """``(T, J, J)`` surface gaps (m) between joint ``a`` of person 1 and ``b`` of person 2 (``inf`` where a
    joint is missing / NaN). See the module docstring for radii and hand proxies."""
    j = _check_joints(joints3d)
    t = j.shape[0]
    names = list(joints)
    # For each contact joint, the list of SMPL-24 points that represent it.
    points = [[JOINT_INDEX[n]] + [JOINT_INDEX[p] for p in _PROXIES.get(n, ())] for n in names]
    radius = np.array([JOINT_RADIUS.get(n, 0.05) for n in names])
    k = max(len(p) for p in points)
    idx = np.array([p + [p[0]] * (k - len(p)) for p in points])  # (J, k), padded with the joint itself
    p1 = j[:, 0][:, idx]  # (T, J, k, 3)
    p2 = j[:, 1][:, idx]
    d = np.linalg.norm(p1[:, :, None, :, None, :] - p2[:, None, :, None, :, :], axis=-1)  # (T, J, J, k, k)
    d = np.where(np.isfinite(d), d, np.inf).reshape(t, len(names), len(names), -1).min(axis=-1)
    return d - radius[None, :, None] - radius[None, None, :]


def _segments(mask: np.ndarray) -> list[tuple[int, int]]:
    out, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(mask) - 1))
    return out


def detect_contacts(joints3d, config: OfflineConfig = OfflineConfig(),
                    joints: Sequence[str] = CONTACT_JOINTS, gaps: np.ndarray | None = None) -> list[Contact]:
    """Contacts (clip-relative frames) found in the geometry with hysteresis; see the module docstring."""
    g = contact_gaps(joints3d, joints) if gaps is None else gaps
    t, n, _ = g.shape
    if t == 0:
        return []
    min_a = g.min(axis=2, keepdims=True)
    min_b = g.min(axis=1, keepdims=True)
    cand = (g <= min_a) & (g <= min_b) & (g < config.enter)
    found: list[tuple[float, Contact]] = []
    for a, b in zip(*np.nonzero(cand.any(axis=0))):
        on = np.zeros(t, dtype=bool)
        state = False
        for f in range(t):
            if not state and cand[f, a, b]:
                state = True
            elif state and not g[f, a, b] < config.leave:
                state = False
            on[f] = state
        segs = _segments(on)
        merged: list[list[int]] = []
        for s0, s1 in segs:
            if merged and s0 - merged[-1][1] - 1 <= config.max_break:
                merged[-1][1] = s1
            else:
                merged.append([s0, s1])
        for s0, s1 in merged:
            if s1 - s0 + 1 < min(config.min_frames, t):
                continue
            mean_gap = float(np.clip(g[s0:s1 + 1, a, b], -1.0, 1.0).mean())
            score = (s1 - s0 + 1) * (1.0 + max(config.leave - mean_gap, 0.0))
            found.append((score, Contact(joints[a], joints[b], int(s0), int(s1))))
    found.sort(key=lambda x: -x[0])
    kept = [c for _, c in found[: config.max_contacts]]
    kept.sort(key=lambda c: (c.t0, c.t1, c.joint_a, c.joint_b))
    return kept


def contact_agreement(contacts: Sequence[Contact], joints3d, *, tol: float = 0.15, falloff: float = 0.25,
                      neighbour: float = 0.30, miss_weight: float = 0.5,
                      config: OfflineConfig = OfflineConfig(), joints: Sequence[str] = CONTACT_JOINTS) -> float:
    """How well annotated ``contacts`` (clip-relative frames, person 1 then person 2) agree with the geometry
    ``joints3d`` ``(T, 2, 24, 3)`` of the same clip; a number in [0, 1].

    * Support ``P``: for every annotated contact frame, the named joints' gap ``g`` (as in ``contact_gaps``)
      scores ``s = 1`` when ``g <= tol`` (0.15 m), falling linearly to 0 at ``g = tol + falloff`` (0.40 m).
      ``P`` is the mean of ``s`` over all annotated contact frames (1 when nothing is annotated).
    * Recall ``R``: the fraction of geometric contact frames (each frame of each contact ``detect_contacts``
      finds) covered by an annotated contact active in that frame whose joints lie within ``neighbour``
      (0.30 m) of the geometric pair's joints on the same person (a wrist annotated where the geometry says
      hand or elbow still counts). ``R = 1`` when the geometry finds no contact.
    * ``confidence = P * (1 - miss_weight * (1 - R))``, with ``miss_weight = 0.5``: contacts the geometry
      contradicts weigh fully (a wrong contact would pull bodies together), contacts the annotation misses
      cost at most half (VLMs under-report, and the estimate itself may be too close).
    """
    j = _check_joints(joints3d)
    t = j.shape[0]
    if t == 0:
        return 1.0 if not contacts else 0.0
    names = list(joints)
    pos = {n: i for i, n in enumerate(names)}
    g = contact_gaps(j, names)
    scores: list[float] = []
    active: list[list[tuple[int, int]]] = [[] for _ in range(t)]
    for c in contacts:
        if c.joint_a not in pos or c.joint_b not in pos:
            continue
        a, b = pos[c.joint_a], pos[c.joint_b]
        for f in range(max(int(c.t0), 0), min(int(c.t1), t - 1) + 1):
            gap = float(g[f, a, b])
            scores.append(float(np.clip(1.0 - (gap - tol) / falloff, 0.0, 1.0)) if np.isfinite(gap) else 0.0)
            active[f].append((a, b))
    p = float(np.mean(scores)) if scores else 1.0
    geo = detect_contacts(j, config, names, gaps=g)
    total = matched = 0
    if geo:
        idx = np.array([JOINT_INDEX[n] for n in names])
        for c in geo:
            a, b = pos[c.joint_a], pos[c.joint_b]
            for f in range(c.t0, c.t1 + 1):
                total += 1
                pa, pb = j[f, 0, idx], j[f, 1, idx]
                for a2, b2 in active[f]:
                    if np.linalg.norm(pa[a] - pa[a2]) <= neighbour and np.linalg.norm(pb[b] - pb[b2]) <= neighbour:
                        matched += 1
                        break
    r = matched / total if total else 1.0
    return float(np.clip(p * (1.0 - miss_weight * (1.0 - r)), 0.0, 1.0))


def image_agreement(contacts: Sequence[Contact], keypoints2d, *, near: float = 0.1, far: float = 0.35,
                    min_confidence: float = 0.3) -> float | None:
    """How well annotated ``contacts`` (clip-relative frames, person 1 then person 2) agree with the image:
    the detected 2D keypoints ``(T, 2, 24, 3)`` of the same clip (u, v, confidence), evidence that the 3D
    estimate (and so the offline annotator, and ``contact_agreement``) did not produce. A number in [0, 1],
    or None when no annotated contact frame has both joints seen with ``min_confidence``.

    Two body parts that touch meet in the image too: for every annotated contact frame where both joints are
    seen, their image distance over the mean of the two people's heights in the image (``gap``) scores 1 up
    to ``near`` (0.1), falling linearly to 0 at ``far`` (0.35); the mean over those frames. Meeting in the
    image does not prove a touch (one may be behind the other), so this can only lower a confidence.
    """
    kp = np.asarray(keypoints2d, dtype=np.float64)
    seen = kp[..., 2] >= min_confidence
    top = np.where(seen, kp[..., 1], np.inf).min(-1)
    spans = np.where(seen.sum(-1) >= 2, np.where(seen, kp[..., 1], -np.inf).max(-1) - top, np.nan)  # (T, 2)
    heights = [np.median(h[np.isfinite(h)]) for h in spans.T if np.isfinite(h).any()]  # each person's
    scale = float(np.mean(heights)) if heights else 0.0
    if not scale > 0:
        return None
    scores = []
    for c in contacts:
        a, b = JOINT_INDEX[c.joint_a], JOINT_INDEX[c.joint_b]
        for f in range(max(int(c.t0), 0), min(int(c.t1), kp.shape[0] - 1) + 1):
            if seen[f, 0, a] and seen[f, 1, b]:
                gap = float(np.linalg.norm(kp[f, 0, a, :2] - kp[f, 1, b, :2])) / scale
                scores.append(float(np.clip(1.0 - (gap - near) / (far - near), 0.0, 1.0)))
    return float(np.mean(scores)) if scores else None


def resolve_person_order(contacts: Sequence[Contact], joints3d, margin: float = 0.15, **kw
                         ) -> tuple[bool, float]:
    """Whether the annotation's person 1/2 are the estimate's persons 2/1: ``(swapped, confidence)``.
    Swaps only when the swapped contacts agree better by more than ``margin``."""
    direct = contact_agreement(contacts, joints3d, **kw)
    if not contacts:
        return False, direct
    swapped = contact_agreement([c.swapped() for c in contacts], joints3d, **kw)
    if swapped > direct + margin:
        return True, swapped
    return False, direct


# ---- sentences -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Scene:
    distance: float            # mean horizontal pelvis distance (m)
    facing: tuple[float, float]  # cos between each person's forward and the direction to the other
    motion: tuple[str, str]    # "still" | "toward" | "away" | "walk"
    raised: tuple[tuple[bool, bool], tuple[bool, bool]]  # per person: (left hand raised, right hand raised)
    low: tuple[str, str]       # "" | "crouch" | "lie"


def _horizontal(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    return v - (v @ up)[..., None] * up


def _norm(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-9, v / np.maximum(n, 1e-9), 0.0)


def _scene(j: np.ndarray, up: np.ndarray, fps: float) -> _Scene:
    ji = JOINT_INDEX
    j = np.where(np.isfinite(j), j, np.nan)
    pel = np.nanmean(j[:, :, ji["pelvis"]], axis=0)  # (2, 3) mean over the clip
    pel = np.nan_to_num(pel)
    dist = float(np.linalg.norm(_horizontal(pel[1] - pel[0], up)))
    left = (j[:, :, ji["left_hip"]] - j[:, :, ji["right_hip"]]) + (
        j[:, :, ji["left_shoulder"]] - j[:, :, ji["right_shoulder"]])
    left = np.nan_to_num(np.nanmean(left, axis=0))  # (2, 3)
    fwd = _norm(_horizontal(np.cross(left, up), up))
    to_other = _norm(_horizontal(np.stack([pel[1] - pel[0], pel[0] - pel[1]]), up))
    facing = tuple(float(fwd[i] @ to_other[i]) for i in range(2))
    motion = []
    raised = []
    low = []
    dur = max(j.shape[0] - 1, 1) / max(fps, 1e-6)
    for i in range(2):
        track = np.nan_to_num(j[:, i, ji["pelvis"]])
        disp = _horizontal(track[-1] - track[0], up)
        along = float(disp @ to_other[i])
        if along > 0.15 and abs(along) >= 0.5 * np.linalg.norm(disp):
            motion.append("toward")
        elif along < -0.15 and abs(along) >= 0.5 * np.linalg.norm(disp):
            motion.append("away")
        elif np.linalg.norm(disp) / dur > 0.4 and np.linalg.norm(disp) > 0.2:
            motion.append("walk")
        else:
            motion.append("still")
        head_h = np.nan_to_num(j[:, i, ji["head"]] @ up)
        wr = [np.nan_to_num(j[:, i, ji[n]] @ up) for n in ("left_wrist", "right_wrist")]
        raised.append(tuple(bool(np.mean(w > head_h + 0.05) > 0.5) for w in wr))
        bone = lambda a, b: float(np.nanmedian(np.linalg.norm(j[:, i, ji[a]] - j[:, i, ji[b]], axis=-1)))
        stature = (bone("left_ankle", "left_knee") + bone("left_knee", "left_hip") + bone("pelvis", "spine1")
                   + bone("spine1", "spine2") + bone("spine2", "spine3") + bone("spine3", "neck")
                   + bone("neck", "head"))
        feet = np.nan_to_num(np.minimum(j[:, i, ji["left_ankle"]] @ up, j[:, i, ji["right_ankle"]] @ up))
        height = float(np.median(head_h - feet))
        ratio = height / stature if np.isfinite(stature) and stature > 0.3 else 1.0
        low.append("lie" if ratio < 0.35 else "crouch" if ratio < 0.72 else "")
    return _Scene(dist, facing, (motion[0], motion[1]), (raised[0], raised[1]), (low[0], low[1]))


class OfflineAnnotator:
    """Contacts and sentences from the current 3D estimate; see the module docstring.

    ``annotate(joints3d, start=0, end=None)`` takes the clip's joints ``(T, 2, 24, 3)`` (metres) and returns a
    ``ClipAnnotation`` (source ``"offline"``) for video frames ``[start, end)`` (``end`` defaults to
    ``start + T``), with the confidence of ``contact_agreement``."""

    def __init__(self, up: Sequence[float] = (0.0, -1.0, 0.0), config: OfflineConfig = OfflineConfig(),
                 seed: int = 0):
        self.up = _unit(up)
        self.config = config
        self.seed = int(seed)

    def contacts(self, joints3d) -> list[Contact]:
        return detect_contacts(joints3d, self.config)

    def annotate(self, joints3d, start: int = 0, end: int | None = None,
                 warnings: Sequence[str] = ()) -> ClipAnnotation:
        j = _check_joints(joints3d)
        end = start + j.shape[0] if end is None else int(end)
        if j.shape[0] == 0:
            return ClipAnnotation(start, end, ("a person stands near others.", "a person stands near others."),
                                  (), "offline", 0.0, tuple(warnings) + ("no frames to annotate",))
        contacts = detect_contacts(j, self.config)
        text = self.sentences(j, contacts, key=f"{start}:{end}")
        conf = contact_agreement(contacts, j, config=self.config)
        return ClipAnnotation(int(start), int(end), text, tuple(contacts), "offline", conf, tuple(warnings))

    def sentences(self, joints3d, contacts: Sequence[Contact], key: str = "") -> tuple[str, str]:
        """The two sentences (person 1's view, person 2's view) for this clip's geometry and contacts."""
        j = _check_joints(joints3d)
        scene = _scene(j, self.up, self.config.fps)
        out = []
        for me in (0, 1):
            rng = random.Random(f"{self.seed}:{key}:{me}")
            mine = [(c.joint_a, c.joint_b, c) if me == 0 else (c.joint_b, c.joint_a, c) for c in contacts]
            out.append(_sentence(scene, me, mine, rng))
        return out[0], out[1]


def _choice(rng: random.Random, options: Sequence[str]) -> str:
    return options[rng.randrange(len(options))]


def _sentence(scene: _Scene, me: int, mine: list[tuple[str, str, Contact]], rng: random.Random) -> str:
    other = 1 - me
    # what the body does
    if scene.low[me] == "lie":
        verb = _choice(rng, ["lies on the ground", "is lying down"])
    elif scene.low[me] == "crouch":
        verb = _choice(rng, ["crouches", "bends down", "squats"])
    else:
        verb = {
            "still": _choice(rng, ["stands", "is standing"]),
            "toward": _choice(rng, ["walks toward others", "steps toward others", "approaches others"]),
            "away": _choice(rng, ["walks away from others", "steps back from others", "moves away from others"]),
            "walk": _choice(rng, ["walks", "walks along", "moves"]),
        }[scene.motion[me]]
    d = scene.distance
    if scene.motion[me] in ("toward", "away"):
        where = ""
    elif d < 0.6:
        where = _choice(rng, ["close to others", "right next to others"])
    elif d < 1.2:
        where = _choice(rng, ["near others", "an arm's length from others"])
    elif d < 2.5:
        where = _choice(rng, ["a few steps away from others", "a short distance from others"])
    else:
        where = _choice(rng, ["far from others", "far away from others"])
    f_me, f_other = scene.facing[me], scene.facing[other]
    if f_me > 0.5 and f_other > 0.5:
        facing = _choice(rng, ["facing them", "face to face with them"])
    elif f_me > 0.5:
        facing = _choice(rng, ["facing them", "turned toward them"])
    elif f_me < -0.5:
        facing = _choice(rng, ["with the back to them", "turned away from them"])
    else:
        facing = _choice(rng, ["standing sideways to them", "beside them"]) if scene.motion[me] == "still" \
            else ""
    head = "a person " + verb + (" " + where if where else "")
    if facing and (where or scene.motion[me] in ("toward", "away")):
        head += ", " + facing
    # contacts, in order of onset
    phrases: list[str] = []
    seen: set[str] = set()
    for mj, oj, c in sorted(mine, key=lambda x: (x[2].t0, x[2].t1)):
        my_part, their_part = _PART[mj], _PART[oj]
        brief = c.num_frames <= 3
        if mj in _HANDS and oj in _HANDS:
            v = _choice(rng, ["holding", "clasping", "grasping"])
            p = f"{v} their {my_part} with the other's {their_part}"
        elif mj in _HANDS:
            v = _choice(rng, ["putting", "placing", "resting"]) if not brief else _choice(rng, ["tapping", "touching"])
            p = f"{v} their {my_part} on the other's {their_part}" if not brief else \
                f"{v} the other's {their_part} with their {my_part}"
        elif oj in _HANDS:
            v = _choice(rng, ["being touched", "being held"]) if not brief else "being touched briefly"
            p = f"with their {my_part} {v}"
        else:
            v = _choice(rng, ["touching", "pressing against", "against"])
            p = f"their {my_part} {v} the other's {their_part}"
        if p not in seen:
            seen.add(p)
            phrases.append(p)
    if len(phrases) > 4:
        phrases = phrases[:4]
    raised = scene.raised[me]
    if raised[0] and raised[1]:
        phrases.append(_choice(rng, ["raising both hands", "with both arms up"]))
    elif raised[0] or raised[1]:
        side = "left" if raised[0] else "right"
        phrases.append(_choice(rng, [f"raising their {side} hand", f"with their {side} arm up"]))
    if not phrases:
        body = head
    elif len(phrases) == 1:
        body = head + ", " + phrases[0]
    else:
        body = head + ", " + ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return body + "."
