"""What an interaction script works with: the two people's bodies, placement helpers and the plan it
returns.

A script (one function per interaction type, in the family modules) places both people, gives each a
standing (or walking) base motion with sway and breathing, then adds arm reaches whose targets are
computed from the partner's torso (so a hand lands on the partner's shoulder wherever the partner
sways). The synthesizer then refines the contacts on the real surfaces, checks everything and writes
the sentences.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from socialmirror.body.skeleton import JOINT_INDEX
from socialmirror.data.synth.motion import IDLE_REACH, PersonMotion, arm_length, facing_dir, leg_length, min_jerk, rot_y
from socialmirror.data.synth.skinning import RestBody
from socialmirror.errors import SocialMirrorError

J = JOINT_INDEX
UP = np.array([0.0, 1.0, 0.0])


class Retry(SocialMirrorError):
    """A drawn sample breaks a check (no contact reached, interpenetration, ...): draw another."""


def other(side: str) -> str:
    return "left" if side == "right" else "right"


@dataclass
class Person:
    """One drawn person: shape, rest body and the sizes scripts scale their distances with."""

    shape: np.ndarray  # (6,) anny phenotypes
    rest: RestBody
    child: bool

    @property
    def scale(self) -> float:
        return self.rest.height / 1.7

    @property
    def arm(self) -> float:
        """Shoulder to wrist length (m)."""
        return arm_length(self.rest.joints)

    @property
    def leg(self) -> float:
        """Hip to ankle length (m)."""
        return leg_length(self.rest.joints)

    @property
    def pronoun(self) -> str:
        return "his" if self.shape[0] >= 0.5 else "her"

    @property
    def shoulder_height(self) -> float:
        """Standing shoulder height above the floor (m)."""
        return float(self.rest.joints[J["left_shoulder"], 1] - self.rest.sole)

    @property
    def pelvis_height(self) -> float:
        """Pelvis height standing on the floor (y = 0) with knees barely bent."""
        return -self.rest.sole - 0.008 * self.scale


@dataclass(frozen=True)
class Posture:
    """How one person holds themselves through a clip, drawn per person (``Stage.posture``). Real people lean,
    twist, bend their knees and hang their arms bent or straight; a synthesizer whose people all stand upright
    with the rest pose's arms teaches networks one posture (README, pose coverage: torso lean 95th percentile
    5 degrees against CMU's 16 and Buetepage's 34)."""

    lean: float = 0.0  # forward (+) or back, rad
    side_lean: float = 0.0  # towards the left (+) or right, rad
    twist: float = 0.0  # shoulders against hips about the spine, rad
    crouch: float = 0.0  # pelvis lowered by this fraction of the leg's length (feet stay planted: knees bend)
    idle_reach: tuple[float, float] = (IDLE_REACH, IDLE_REACH)  # hanging wrists from the shoulders / arm

    def scaled(self, factor: float) -> "Posture":
        """The same posture ``factor`` as pronounced (0: upright with the rest pose's arms)."""
        rest = Posture()
        reach = tuple(rest.idle_reach[i] + factor * (self.idle_reach[i] - rest.idle_reach[i]) for i in range(2))
        return Posture(self.lean * factor, self.side_lean * factor, self.twist * factor, self.crouch * factor, reach)


@dataclass
class Plan:
    """A script's output: both people's motion drivers and what the sentences need to know."""

    action: str
    persons: list[PersonMotion]
    contacts: list[tuple[str, str]]  # scripted (joint of person 1, joint of person 2) pairs
    side: str  # the acting hand of person 1 ("right" or "left"), for the sentences
    info: dict = field(default_factory=dict)


class Stage:
    """Context for a script: random generator, clip length, the two people."""

    def __init__(self, rng: np.random.Generator, T: int, fps: float, people: list[Person],
                 posture_spread: float = 0.0):
        self.rng, self.T, self.fps, self.people = rng, T, fps, people
        self.t = np.arange(T) / fps
        self.postures = [self.posture(posture_spread) for _ in people]

    def posture(self, spread: float) -> Posture:
        """A random posture, ``spread`` scaling every range (0: upright, the rest pose's arms). At 1 the forward
        lean spans -5 to 20 degrees, the side lean and the twist +-4 and +-14, a third of the people crouch by up
        to 12% of the leg (knees to about 60 degrees), and the idle elbows range from nearly straight (7
        degrees) to 56."""
        if spread <= 0:
            return Posture()
        u = lambda lo, hi: self.u(lo * spread, hi * spread)  # noqa: E731
        crouch = u(0.0, 0.12) if self.rng.random() < 1 / 3 else 0.0
        reach = tuple(min(IDLE_REACH + u(-0.05, 0.068), 0.999) for _ in range(2))
        return Posture(lean=u(-0.09, 0.35), side_lean=u(-0.07, 0.07), twist=u(-0.25, 0.25), crouch=crouch,
                       idle_reach=reach)

    def swap_people(self) -> None:
        """The two drawn people exchange roles (with their postures): for an interaction that one of them can
        do to the other only one way round (the taller one's arm round the shorter one's shoulders). The
        synthesizer realises the plan with ``self.people`` as it is after the script."""
        self.people = self.people[::-1]
        self.postures = self.postures[::-1]

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def side(self) -> str:
        """A random acting hand: right three times out of four, as people are."""
        return "right" if self.rng.random() < 0.75 else "left"

    def sway(self, amp: float, lo: float = 0.15, hi: float = 0.4) -> np.ndarray:
        """(T,) smooth random oscillation: a sum of two sines of random frequency and phase."""
        out = np.zeros(self.T)
        for k in range(2):
            f, ph = self.u(lo, hi), self.u(0, 2 * np.pi)
            out += amp / (k + 1) * np.sin(2 * np.pi * f * self.t + ph)
        return out

    def stand(self, k: int, pos: np.ndarray, yaw: float) -> PersonMotion:
        """Person k standing at ground point ``pos`` facing ``yaw`` in their posture (``self.postures[k]``):
        feet planted, pelvis swaying a centimetre, breathing in the chest, head free (scripts set ``look_at``)."""
        pe, posture = self.people[k], self.postures[k]
        T, s = self.T, pe.scale
        rj = pe.rest.joints
        yaw_t = np.full(T, yaw) + self.sway(0.02)
        R = rot_y(yaw)
        lateral = R @ np.array([1.0, 0.0, 0.0])
        forward = R @ np.array([0.0, 0.0, 1.0])
        root = np.zeros((T, 3))
        root[:] = np.array([pos[0], pe.pelvis_height, pos[2]])
        root += lateral * self.sway(0.010 * s)[:, None] + forward * self.sway(0.006 * s)[:, None]
        breath_f = self.u(0.2, 0.33)
        breath = np.sin(2 * np.pi * breath_f * self.t + self.u(0, 6.3))
        root[:, 1] += 0.002 * s * breath
        root[:, 1] -= posture.crouch * pe.leg
        lean = np.zeros((T, 3))
        lean[:, 0] = 0.02 + posture.lean + 0.012 * breath + self.sway(0.01)
        lean[:, 1] = posture.twist
        lean[:, 2] = posture.side_lean + self.sway(0.015)
        width = abs(rj[J["left_hip"], 0]) * self.u(0.95, 1.35)
        ankle_h = rj[J["left_ankle"], 1] - pe.rest.sole
        toe = self.u(0.05, 0.25)
        ankles = np.zeros((T, 2, 3))
        foot_yaw = np.zeros((T, 2))
        stagger = self.u(-0.06, 0.06) * s
        for i, sgn in enumerate((1.0, -1.0)):
            ankles[:, i] = (np.array([pos[0], ankle_h, pos[2]]) + lateral * sgn * width
                            + forward * (rj[J["left_ankle"], 2] + sgn * stagger))
            foot_yaw[:, i] = yaw + sgn * toe
        return PersonMotion(T=T, rest_joints=rj, sole=pe.rest.sole, root=root, yaw=yaw_t, lean=lean,
                            pelvis_tilt=np.zeros((T, 3)), ankles=ankles, foot_yaw=foot_yaw,
                            hand_axes=pe.rest.hand_axes, idle_reach=posture.idle_reach)

    def face_to_face(self, distance: float, jitter: float = 0.25) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Ground positions and yaws of two people ``distance`` apart (pelvis to pelvis) roughly facing
        each other (each off by up to ``jitter`` rad). Person 1 stands at -x/2 and faces +x."""
        a = np.array([-distance / 2, 0.0, 0.0])
        b = np.array([distance / 2, 0.0, 0.0])
        return a, b, np.pi / 2 + self.u(-jitter, jitter), -np.pi / 2 + self.u(-jitter, jitter)

    def phases(self, reach: tuple[float, float], hold: tuple[float, float], start: tuple[float, float] = (0.15, 0.35),
               release: tuple[float, float] = (0.35, 0.6)) -> tuple[float, float, float, float]:
        """Frames (on0, on1, off0, off1) of a reach-hold-release, in seconds ranges, fitted into the clip."""
        T, fps = self.T, self.fps
        r, h, rl = self.u(*reach) * fps, self.u(*hold) * fps, self.u(*release) * fps
        total = r + h + rl
        room = T - 1 - 2
        if total > room:
            k = room / total
            r, h, rl = r * k, h * k, rl * k
        s0 = min(self.u(*start) * fps, max(0.0, T - 2 - (r + h + rl)))
        return s0, s0 + r, s0 + r + h, s0 + r + h + rl

    def timeline(self, start: tuple[float, float], *durations: tuple[float, float]) -> tuple[float, ...]:
        """Frames of consecutive moments of one movement: the first ``start`` seconds in, each next one a
        duration later (seconds ranges, drawn in order), all scaled down together when the last would fall past
        the clip's second-last frame."""
        times = [self.u(*start) * self.fps]
        for duration in durations:
            times.append(times[-1] + self.u(*duration) * self.fps)
        if times[-1] > self.T - 2:
            k = (self.T - 2) / times[-1]
            times = [x * k for x in times]
        return tuple(times)


def look_at_each_other(pa: PersonMotion, pb: PersonMotion, ja: np.ndarray, jb: np.ndarray) -> None:
    """Each person's head turns to the other's head; ``ja``, ``jb`` (T, 24, 3) are their torso joints
    (``PersonMotion.torso_fk``)."""
    pa.look_at = jb[:, J["head"]]
    pb.look_at = ja[:, J["head"]]


def stand_facing(st: Stage, distance: float, jitter: float, lean_forward: bool = False
                 ) -> tuple[PersonMotion, PersonMotion, np.ndarray, np.ndarray]:
    """Both people standing ``distance`` apart, facing each other (with ``jitter``), optionally leaning
    slightly forward, looking at each other's head. Returns (person a, person b, a's torso joints, b's)."""
    a, b, ya, yb = st.face_to_face(distance, jitter=jitter)
    pa, pb = st.stand(0, a, ya), st.stand(1, b, yb)
    if lean_forward:
        for p in (pa, pb):
            p.lean[:, 0] += st.u(0.03, 0.1)
    ja, _ = pa.torso_fk()
    jb, _ = pb.torso_fk()
    look_at_each_other(pa, pb, ja, jb)
    return pa, pb, ja, jb


def ramp(T: int, a: float, b: float) -> np.ndarray:
    """(T,) minimum-jerk step from 0 (before frame a) to 1 (after frame b)."""
    return min_jerk((np.arange(T) - a) / max(b - a, 1e-6))


def horizontal(v: np.ndarray) -> np.ndarray:
    v = np.array(v, dtype=np.float64)
    v[..., 1] = 0.0
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


__all__ = ["Person", "Plan", "Posture", "Retry", "Stage", "UP", "facing_dir", "horizontal", "look_at_each_other",
           "other", "ramp", "stand_facing"]
