"""The interaction synthesizer: draws two people and an interaction, scripts the motion, makes the
scripted contacts touch on the real surfaces, measures the contacts from the final geometry, screens
for interpenetration and writes the two sentences.

Contacts are *measured*, not trusted: a contact (joint of person 1, joint of person 2) is annotated on
exactly the frames where the two surface patches around those joints (``skinning.REGION_RADIUS``) come
within ``contact_distance`` (closest vertex pair), and a sample is redrawn if on any such frame the two
joint centres are ``joint_distance`` or more apart, if a scripted contact never happens, or if the
bodies interpenetrate deeper than ``max_penetration`` anywhere. So every annotated frame touches and
every other frame of an annotated pair is apart, by construction.

Types and their contacts (person 1's joint, person 2's joint), right-handed draw; a left-handed draw
(one in four) mirrors the sides:

============== ==================================================================================
handshake      (right_wrist, right_wrist) while the hands clasp and pump
high_five      (right_wrist, left_wrist) for the few frames the flat palms meet overhead
fist_bump      (right_wrist, right_wrist): curled fists meet side to side
wave           none: both raise a hand and wave, 1.6-3.2 m apart
point_at       none: person 1 points at person 2, who leans back
push           (left_wrist, right_collar), (right_wrist, left_collar): palms on the upper chest
pass_object    (right_wrist, right_wrist): giver's palm up, taker's palm down; the object itself
               is not modelled, the hands touch while it changes hands
dance          (left_wrist, right_wrist), (right_wrist, left_wrist): both hands held, swaying
pat_shoulder   (right_wrist, left_shoulder): the palm pats the top of the shoulder, facing or side by side
punch_block    (right_wrist, left_wrist): the fist lands on the raised guarding forearm
kick_dodge     none: a front kick at the other's middle, who sways back out of reach, guard up
walk_together  none: side by side, same speed, each with their own cadence
walk_past      none: towards each other on parallel lines, passing a body width or more apart
talk           none: 1-2 m apart, taking turns to speak, the speaker gesturing, the listener nodding
arm_around     (right_wrist, right_shoulder): side by side, one arm round the other's back, the hand resting on
               the far shoulder
lead_by_hand   (right_wrist, left_wrist): walking, one ahead leading the other, who follows on the leading hand's
               side, by the hand (the leader's arm reaching back, the follower's forward)
sit_and_stand  none: seated side by side (the seat not modelled), talking, then one or both stand up
hook_duck      none: a hook swung at the head, the other ducking under it and coming back up
shove          as push, harder: the other stumbles back a step as the hands leave the chest
hug            (left_wrist, right_shoulder), (right_wrist, left_shoulder): face to face, the taller's arms over
               the other's shoulders, the other's under them round the chest (those hands on the back, where no
               joint of the vocabulary lies, are not annotated)
============== ==================================================================================

A "wrist" surface patch is the hand (palm, thumb, proximal fingers) within 13 cm of the wrist joint:
Table 1's 19 joints have no hand joint, so a hand's touch is the wrist's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import erfinv

from socialmirror.body.anny_model import PHENOTYPES
from socialmirror.body.base import BodyModel
from socialmirror.body.skeleton import JOINT_INDEX, SMPL24_NAMES
from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.data.synth import combat, conversation, greetings, locomotion, touch
from socialmirror.data.synth.clearance import bone_radius, clearest_turns, separation_along, turn_about
from socialmirror.data.synth.motion import pose_person, rot_y
from socialmirror.data.synth.skinning import REGION_RADIUS, RestBody, Skinner, penetration_depth
from socialmirror.data.synth.stage import Person, Plan, Retry, Stage
from socialmirror.data.synth.text import sentences
from socialmirror.errors import UserError

J = JOINT_INDEX


class DrawError(UserError, RuntimeError):
    """No valid sample of the asked kind in all the tries: a kind that rarely draws (a push needs about five
    tries a sequence), asked for alone; the message names the last reason."""

# name -> script; the order is the order of the CLI's --types help and of the contact sheet.
INTERACTIONS = {
    "handshake": greetings.handshake,
    "high_five": greetings.high_five,
    "fist_bump": greetings.fist_bump,
    "wave": greetings.wave,
    "point_at": greetings.point_at,
    "push": touch.push,
    "pass_object": touch.pass_object,
    "dance": touch.dance,
    "pat_shoulder": touch.pat_shoulder,
    "punch_block": combat.punch_block,
    "kick_dodge": combat.kick_dodge,
    "walk_together": locomotion.walk_together,
    "walk_past": locomotion.walk_past,
    "talk": conversation.talk,
    "arm_around": touch.arm_around,
    "lead_by_hand": locomotion.lead_by_hand,
    "sit_and_stand": conversation.sit_and_stand,
    "hook_duck": combat.hook_duck,
    "shove": touch.shove,
    "hug": touch.hug,
}


HEIGHT = PHENOTYPES.index("height")
TRUNK = ("pelvis", "spine1", "spine2", "spine3")  # an arm going round the partner stays clear of these too
# joints whose skin a hand going round the partner may lie on (contact refinement keeps the hand out of all of it)
BACK = tuple(J[n] for n in (*TRUNK, "neck", "head", "left_collar", "right_collar", "left_shoulder", "right_shoulder"))
REACH_MARGIN = 0.45  # a body part's skin lies within this of its joint (the thigh's, the longest, about 0.45 m)


def normal_quantile(p: float) -> float:
    """The standard normal's quantile at p in (0, 1) (through the error function's inverse)."""
    return float(np.sqrt(2.0) * erfinv(2.0 * p - 1.0))


@dataclass
class SynthConfig:
    """What the synthesizer draws. Cameras are not drawn here: the observation model projects the
    world-frame sequences through its own random cameras."""

    fps: float = 30.0
    duration: tuple[float, float] = (2.0, 4.0)  # seconds, uniform
    types: tuple[str, ...] = ()  # empty: all of INTERACTIONS
    child_prob: float = 0.25  # probability that each person is a child
    # Adults' statures: None draws anny's height phenotype uniformly in [0.2, 0.8] (1.79 +- 0.19 m from the
    # top of the head to the sole, 1.28-2.13: taller and more spread than any real population); (women, men,
    # spread) in metres draws each adult's stature from a normal around the women's and the men's mean (anny's
    # gender 0 and 1, linear between), cut at 2.5 spreads, e.g. (1.63, 1.77, 0.07) for the adults of Europe and
    # North America (NCD-RisC, eLife 2016). Networks trained on either were measured (README, "Training and
    # the shipped weights", two seeds each): two seeds of one population differ more than the populations
    # do, so the default stays the draw the shipped weights were trained on.
    adult_stature: tuple[float, float, float] | None = None
    with_vertices: bool = False
    vertex_dtype: str = "float32"  # or "float16" (halves the files; ~1 mm rounding at 2 m)
    contact_distance: float = 0.015  # closest vertex distance that counts as touching (m)
    joint_distance: float = 0.15  # joint centres of an annotated contact must be closer (m)
    max_penetration: float = 0.01  # deepest allowed interpenetration (m)
    target_gap: float = 0.003  # surface gap along the closing direction that refinement aims for
    refine_iters: int = 4
    max_tries: int = 12
    penetration_stride: int = 4  # check every n-th frame where the bodies are close, and of contacts
    world_yaw: bool = True  # rotate and shift the scene at random in the ground plane
    posture_spread: float = 1.0  # each person's lean, twist, crouch and idle arms (stage.Posture; 0: upright)

    def type_names(self) -> tuple[str, ...]:
        names = self.types or tuple(INTERACTIONS)
        unknown = [n for n in names if n not in INTERACTIONS]
        if unknown:
            raise ValueError(f"unknown interaction types {unknown}; known: {', '.join(INTERACTIONS)}")
        return tuple(names)


@dataclass
class _Posed:
    R: np.ndarray  # (T, 24, 3, 3) local
    joints: np.ndarray  # (T, 24, 3)
    glob: np.ndarray  # (T, 24, 3, 3)


@dataclass
class SampleStats:
    """Per-sample figures the CLI and tests report."""

    tries: int = 0
    seconds: float = 0.0
    max_penetration: float = 0.0
    contact_frames: int = 0
    extras: dict = field(default_factory=dict)


class InteractionSynthesizer:
    """``sample(rng)`` -> one :class:`TwoPersonSequence` (world frame, y up, metres)."""

    def __init__(self, body: BodyModel, config: SynthConfig | None = None):
        self.body = body
        self.config = config or SynthConfig()
        self.skinner = Skinner(body)
        self.types = self.config.type_names()
        self.last_stats = SampleStats()

    # ------------------------------------------------------------------------------------ people
    def draw_person(self, rng: np.random.Generator, child: bool) -> Person:
        """anny phenotypes: adults of every build, or children (age 0.15-0.35: about 0.9-1.55 m). An adult's
        height phenotype is set to give a stature drawn from ``SynthConfig.adult_stature`` (the same number
        of draws either way, so a seed draws the same sequence but for the adults' heights)."""
        u = rng.uniform
        if child:
            shape = [u(0, 1), u(0.15, 0.35), u(0.2, 0.7), u(0.2, 0.7), u(0.3, 0.7), u(0.3, 0.7)]
        else:
            shape = [u(0, 1), u(0.42, 0.95), u(0.1, 0.9), u(0.1, 0.75), u(0, 1), u(0.2, 0.8)]
            stature = self.config.adult_stature
            if stature is None:
                shape[HEIGHT] = 0.2 + 0.6 * shape[HEIGHT]
            else:
                women, men, spread = stature
                z = float(np.clip(normal_quantile(shape[HEIGHT]), -2.5, 2.5))
                shape[HEIGHT] = self.height_phenotype(np.array(shape), women + (men - women) * shape[0] + spread * z)
        shape = np.array(shape)
        return Person(shape=shape, rest=self.skinner.rest(shape), child=child)

    def height_phenotype(self, shape: np.ndarray, stature: float, steps: int = 3) -> float:
        """anny's height phenotype that gives ``shape`` (the other phenotypes) the ``stature`` (m), within a
        millimetre over anny's range: secant steps on the stature, which is almost linear in it."""
        def stature_at(h: float) -> float:
            return self.skinner.rest(np.concatenate([shape[:HEIGHT], [h], shape[HEIGHT + 1:]])).height
        h0, h1 = 0.2, 0.8
        s0, s1 = stature_at(h0), stature_at(h1)
        for _ in range(steps):
            if abs(s1 - stature) < 1e-4 or s1 == s0:  # there, or at the end of anny's range
                break
            h0, s0, h1 = h1, s1, float(np.clip(h1 + (stature - s1) * (h1 - h0) / (s1 - s0), 0.0, 1.0))
            s1 = stature_at(h1)
        return h1

    # ------------------------------------------------------------------------------------ sample
    def sample(self, rng: np.random.Generator, action: str | None = None, name: str = "") -> TwoPersonSequence:
        """Draw one sample, redrawing people, timing and placement until every check passes.

        The type is drawn once (a redraw must not turn a hard interaction into an easy one, or the
        hard ones would be under-represented); only if ``max_tries`` draws of it all fail is another
        type drawn (never when ``action`` is given). ``DrawError`` after 3 * ``max_tries`` draws."""
        start = time.perf_counter()
        cfg = self.config
        reasons: list[str] = []
        act = action or self.types[int(rng.integers(len(self.types)))]
        for attempt in range(1, 3 * cfg.max_tries + 1):
            if attempt > cfg.max_tries and (attempt - 1) % cfg.max_tries == 0 and action is None:
                act = self.types[int(rng.integers(len(self.types)))]
            people = [self.draw_person(rng, bool(rng.random() < cfg.child_prob)) for _ in range(2)]
            T = int(round(rng.uniform(*cfg.duration) * cfg.fps)) + 1
            stage = Stage(rng, T, cfg.fps, people, cfg.posture_spread)
            try:
                plan = INTERACTIONS[act](stage)
                seq = self._realise(plan, stage.people, stage, name)  # a script may swap the two's roles
            except Retry as e:
                reasons.append(f"{act}: {e}")
                continue
            except (np.linalg.LinAlgError, FloatingPointError, ValueError) as e:
                # a degenerate draw (e.g. a hand direction parallel to its palm): draw again
                reasons.append(f"{act}: numerical failure ({type(e).__name__}: {e})")
                continue
            self.last_stats.tries = attempt
            self.last_stats.seconds = time.perf_counter() - start
            self.last_stats.extras["retry_reasons"] = reasons
            return seq
        self.last_stats.extras["retry_reasons"] = reasons
        raise DrawError(f"could not draw a valid {act} in {len(reasons)} tries (the last: "
                        f"{reasons[-1]}); another --seed, or more --types, draws other people")

    # ---------------------------------------------------------------------------------- internals
    def _pose(self, plan: Plan) -> list[_Posed]:
        return [_Posed(*pose_person(p)) for p in plan.persons]

    def _region(self, rest: RestBody, posed: _Posed, joint: str, frames: np.ndarray, wide: bool = False) -> np.ndarray:
        idx = (rest.patches if wide else rest.regions)[joint]
        return self.skinner.pose(rest, posed.glob[frames], posed.joints[frames], idx)

    def _parts_near(self, posed: _Posed, frames: np.ndarray, centre: np.ndarray, radius: float,
                    among: tuple[int, ...] | None = None) -> np.ndarray:
        """Vertex indices of the body parts (by dominant joint, optionally only those ``among``) whose joint comes
        within ``radius`` of ``centre`` (len(frames), 3) in some frame: what is worth skinning near a point."""
        d = np.linalg.norm(posed.joints[frames] - centre[:, None], axis=-1).min(0)
        joints = np.nonzero(d < radius)[0]
        if among is not None:
            joints = np.intersect1d(joints, among)
        return np.nonzero(np.isin(self.skinner.dominant, joints))[0]

    def _route_arms(self, plan: Plan, people: list[Person]) -> list[_Posed]:
        """Arms that go round the partner (``Reach.around``): each frame's elbow turned about the shoulder-wrist
        line to where the arm clears the partner's posed body and its own trunk (``clearance.clearest_turns``),
        person by person, each against the other as posed so far."""
        posed = self._pose(plan)
        for k, person in enumerate(plan.persons):
            arms = [r for r in person.reaches.values() if r.around]
            if not arms:
                continue
            frames = np.nonzero(np.max([r.weight for r in arms], axis=0) > 0.02)[0]
            q, rest = 1 - k, people[k].rest
            js = posed[k].joints[frames]
            # only the partner's skin within an arm's length of the shoulders can be in an arm's way
            centre = js[:, [J["left_shoulder"], J["right_shoulder"]]].mean(1)
            span = np.linalg.norm(rest.joints[J["left_shoulder"]] - rest.joints[J["right_shoulder"]])
            within = 0.5 * span + people[k].arm + 0.1
            near = self._parts_near(posed[q], frames, centre, within + REACH_MARGIN)
            skin = self.skinner.pose(people[q].rest, posed[q].glob[frames], posed[q].joints[frames], near)
            partner = [cKDTree(_within(v, c, within)) for v, c in zip(skin, centre)]
            trunk = np.nonzero(np.isin(self.skinner.dominant, [J[n] for n in TRUNK]))[0]
            own = [cKDTree(v) for v in self.skinner.pose(rest, posed[k].glob[frames], posed[k].joints[frames], trunk)]
            for reach in arms:
                sh, el, wr = (J[f"{reach.side}_{n}"] for n in ("shoulder", "elbow", "wrist"))
                radius = (bone_radius(rest.vertices, rest.dominant, rest.joints, sh, el),
                          bone_radius(rest.vertices, rest.dominant, rest.joints, el, wr))
                turn, _ = clearest_turns(js[:, sh], js[:, el], js[:, wr], partner, own, radius)
                pole = np.array(np.broadcast_to(reach.pole, (person.T, 3)), dtype=np.float64)
                # the IK keeps the part of the pole across the shoulder-wrist line: the turned elbow's direction
                pole[frames] = turn_about(js[:, sh], js[:, wr], js[:, el], turn) - js[:, sh]
                reach.pole = pole
            posed = self._pose(plan)
        return posed

    def _refine(self, plan: Plan, people: list[Person]) -> list[_Posed]:
        """Move the contact-making hands' targets until the surfaces meet at ``target_gap``."""
        cfg = self.config
        posed = self._route_arms(plan, people)
        reaches = [(k, r) for k, p in enumerate(plan.persons) for r in p.reaches.values() if r.contact]
        if not reaches:
            return posed
        # two hands meeting (each reach with share 0.5): measure once from person 1's side and move
        # person 2's hand by the opposite correction
        mirror = {}
        for k, r in reaches:
            if k == 1:
                for k0, r0 in reaches:
                    if k0 == 0 and r0.contact == r.contact[::-1] and r0.share < 1 and r.share < 1:
                        mirror[id(r)] = r0
        for _ in range(cfg.refine_iters):
            largest = 0.0
            for k, reach in reaches:
                if id(reach) in mirror:
                    src = mirror[id(reach)]
                    reach.correction = -src.correction * (reach.share / src.share)
                    continue
                q = 1 - k
                own, theirs = reach.contact
                # contact frames are pulled to touching (and the correction interpolated in between);
                # the other frames of the reach are only pushed out of any overlap
                T = reach.weight.shape[0]
                mask = reach.weight > 0.97 if reach.contact_frames is None else reach.contact_frames & (reach.weight > 0.9)
                if not mask.any():
                    raise Retry("a contact reach never reaches")
                frames = np.nonzero((reach.weight > 0.5) | mask)[0]
                if mask.sum() > 16:  # long holds: every other frame inside, all frames near the ends
                    idx = np.nonzero(mask)[0]
                    skip = np.zeros(T, dtype=bool)
                    skip[idx[4:-4][1::2]] = True
                    frames = frames[~skip[frames]]
                a = self._region(people[k].rest, posed[k], own, frames, wide=True)
                b = self._region(people[q].rest, posed[q], theirs, frames, wide=True)
                a_wide = a
                if reach.around:  # an arm laid round the other's back: the hand and forearm stay out of all of it
                    rest_k, rest_q = people[k].rest, people[q].rest
                    hand = posed[k].joints[frames, J[f"{reach.side}_wrist"]]
                    near = np.union1d(rest_q.patches[theirs],
                                      self._parts_near(posed[q], frames, hand, REACH_MARGIN, BACK))
                    b = self.skinner.pose(rest_q, posed[q].glob[frames], posed[q].joints[frames], near)
                    forearm = np.nonzero(self.skinner.dominant == J[f"{reach.side}_elbow"])[0]
                    arm = np.union1d(rest_k.patches[own], forearm)
                    a_wide = self.skinner.pose(rest_k, posed[k].glob[frames], posed[k].joints[frames], arm)
                br = self._region(people[q].rest, posed[q], theirs, frames)
                closing = reach.closing if reach.closing is not None else reach.palm
                close = None if closing is None else np.broadcast_to(closing, (T, 3))
                steps = np.zeros((len(frames), 3))
                for i, t in enumerate(frames):
                    u = b[i].mean(0) - a[i].mean(0) if close is None else close[t]
                    u = u / max(np.linalg.norm(u), 1e-9)
                    # pull toward the partner's joint patch itself, but never press more than a few
                    # millimetres into the wider surroundings (fingers, forearm, chest)
                    sep = separation_along(a[i], br[i], u)
                    wide = separation_along(a_wide[i], b[i], u)
                    if sep is not None and wide is not None:
                        sep = min(sep, wide + cfg.target_gap + 0.002)
                    if sep is None:  # the patches do not face each other yet: close the nearest gap
                        d, ia = cKDTree(b[i]).query(a[i], k=1)
                        m = int(np.argmin(d))
                        sep, u = d[m], (b[i][ia[m]] - a[i][m]) / max(d[m], 1e-9)
                    step = sep - cfg.target_gap
                    if not mask[t]:
                        # push out of a shallow overlap only: a large negative separation means the
                        # hand is still beside or past the patch on its way in, not inside it
                        step = min(step, 0.0) if step > -0.03 else 0.0
                    steps[i] = step * u * reach.share / max(reach.weight[t], 0.5)
                on = mask[frames]
                full = np.zeros((T, 3))
                for c in range(3):
                    full[:, c] = np.interp(np.arange(T), frames[on], steps[on, c])
                push = np.zeros((T, 3))
                push[frames[~on]] = steps[~on]
                full += push
                largest = max(largest, float(np.abs(steps).max()))
                reach.correction = full if reach.correction is None else reach.correction + full
            posed = self._pose(plan)
            if largest < 0.001:
                break
        return posed

    def _touching(self, people: list[Person], posed: list[_Posed], ja: str, jb: str) -> tuple[np.ndarray, np.ndarray]:
        """(T,) bool: frames where the two joints' surface patches are within ``contact_distance``
        (closest vertex pair), and (T,) joint-centre distances."""
        cfg = self.config
        T = posed[0].joints.shape[0]
        jd = np.linalg.norm(posed[0].joints[:, J[ja]] - posed[1].joints[:, J[jb]], axis=-1)
        # beyond the two patches' radii plus the threshold the surfaces cannot touch
        bound = (REGION_RADIUS[ja] * people[0].scale + REGION_RADIUS[jb] * people[1].scale) + cfg.contact_distance + 0.03
        near = np.nonzero(jd < bound)[0]
        touch = np.zeros(T, dtype=bool)
        if len(near):
            a = self._region(people[0].rest, posed[0], ja, near)
            b = self._region(people[1].rest, posed[1], jb, near)
            for i, t in enumerate(near):
                d, _ = cKDTree(b[i]).query(a[i], k=1, distance_upper_bound=cfg.contact_distance)
                touch[t] = bool(np.isfinite(d).any())
        return touch, jd

    def _measure_contacts(self, plan: Plan, people: list[Person], posed: list[_Posed]) -> list[tuple[str, str, int, int]]:
        """Every scripted pair (or, where the script allows, a neighbouring joint of the same limb or
        body part) must touch; each touching pair is annotated on exactly its touching frames."""
        cfg = self.config
        out = []
        for ja, jb in plan.contacts:
            found = False
            for pa_, pb_ in [(ja, jb), *plan.info.get("alternatives", {}).get((ja, jb), [])]:
                touch, jd = self._touching(people, posed, pa_, pb_)
                if not touch.any():
                    continue
                if np.any(jd[touch] >= cfg.joint_distance):
                    raise Retry(f"contact {pa_}-{pb_}: joint centres {jd[touch].max():.3f} m apart while touching")
                found = True
                out.extend((pa_, pb_, t0, t1) for t0, t1 in _runs(touch))
            if not found:
                raise Retry(f"scripted contact {ja}-{jb} never touches")
        return sorted(set(out), key=lambda c: (c[2], c[0], c[1]))

    def _near_vertices(self, rest: RestBody, posed: _Posed, t: int, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posed vertices (and normals) of the body parts whose joint lies within 0.35 m of the other
        person's joints at frame t: only those can touch, and skinning them alone is ~10x cheaper."""
        dj = np.linalg.norm(posed.joints[t][:, None] - others[None], axis=-1).min(1)
        joints = np.nonzero(dj < 0.35)[0]
        if len(joints) == 0:
            return np.zeros((0, 3)), np.zeros((0, 3))
        idx = np.nonzero(np.isin(self.skinner.dominant, joints))[0]
        v = self.skinner.pose(rest, posed.glob[t:t + 1], posed.joints[t:t + 1], idx)[0]
        n = np.einsum("nij,nj->ni", posed.glob[t][self.skinner.dominant[idx]], rest.normals[idx])
        return v, n

    def _check_penetration(self, people: list[Person], posed: list[_Posed], contact_frames: set[int]) -> float:
        """Deepest interpenetration over the frames where the two bodies come close (every
        ``penetration_stride``-th such frame, and every contact frame); redraw above the limit."""
        cfg = self.config
        dj = np.linalg.norm(posed[0].joints[:, :, None] - posed[1].joints[:, None], axis=-1).min((1, 2))
        close = np.nonzero(dj < 0.45)[0]
        frames = sorted(set(close[:: cfg.penetration_stride].tolist())
                        | (set(sorted(contact_frames)[:: cfg.penetration_stride]) & set(close.tolist())))
        worst = 0.0
        for t in frames:
            va, na = self._near_vertices(people[0].rest, posed[0], t, posed[1].joints[t])
            vb, nb = self._near_vertices(people[1].rest, posed[1], t, posed[0].joints[t])
            if len(va) == 0 or len(vb) == 0:
                continue
            worst = max(worst, penetration_depth(va, na, vb, nb))
            if worst > cfg.max_penetration:
                raise Retry(f"interpenetration {100 * worst:.1f} cm at frame {t}")
        return worst

    def _realise(self, plan: Plan, people: list[Person], stage: Stage, name: str) -> TwoPersonSequence:
        cfg = self.config
        posed = self._refine(plan, people)
        contacts = self._measure_contacts(plan, people, posed)
        cframes = {t for _, _, t0, t1 in contacts for t in range(t0, t1 + 1)}
        pen = self._check_penetration(people, posed, cframes)
        joints = np.stack([posed[0].joints, posed[1].joints], 1)  # (T, 2, 24, 3)
        if not np.all(np.isfinite(joints)):
            raise Retry("non-finite joints")
        vertices = None
        if cfg.with_vertices:
            vertices = np.stack([self.skinner.pose(pe.rest, ps.glob, ps.joints) for pe, ps in zip(people, posed)], 1)
        rotmats = np.stack([posed[0].R, posed[1].R], 1)  # (T, 2, 24, 3, 3) local rotations
        if cfg.world_yaw:
            Rw = rot_y(stage.u(-np.pi, np.pi))
            off = np.array([stage.u(-1, 1), 0.0, stage.u(-1, 1)])
            joints = joints @ Rw.T + off
            rotmats[:, :, 0] = Rw @ rotmats[:, :, 0]  # the root carries the scene's yaw
            if vertices is not None:
                vertices = vertices @ Rw.T + off
        side_b = plan.info.get("side_b", plan.side)
        text = sentences(plan.action, stage.rng, (people[0].pronoun, people[1].pronoun), plan.side, side_b)
        self.last_stats = SampleStats(max_penetration=pen, contact_frames=len(cframes))
        meta = {"shapes": [p.shape.tolist() for p in people], "child": [p.child for p in people],
                "side": plan.side, "side_b": side_b, "body_model": self.body.name,
                "max_penetration_m": round(pen, 5),
                # The exact body-model parameters (local rotations, shape, pelvis position), so training
                # targets need no IK fit: body.joints(rotmats, shape, transl) reproduces joints3d.
                "body_params": {"body": self.body.name, "rotmats": np.round(rotmats, 6).tolist(),
                                "shape": [p.shape.tolist() for p in people],
                                "transl": np.round(joints[:, :, 0], 6).tolist()}}
        return TwoPersonSequence(
            joints3d=joints.astype(np.float32), joint_names=SMPL24_NAMES, fps=cfg.fps, up=np.array([0.0, 1.0, 0.0]),
            action=plan.action, text=text, contacts=contacts,
            vertices=None if vertices is None else vertices.astype(cfg.vertex_dtype),
            faces=None if vertices is None else self.skinner.faces.astype(np.int32),
            name=name, source="socialmirror.synth", meta=meta)


def _within(points: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """The points within ``radius`` of ``centre`` (the nearest one where none is, so a KD-tree has a point)."""
    d = np.linalg.norm(points - centre, axis=1)
    keep = d < radius
    return points[keep] if keep.any() else points[[int(np.argmin(d))]]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) of every run of True."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.nonzero(d == 1)[0].tolist(), (np.nonzero(d == -1)[0] - 1).tolist()))
