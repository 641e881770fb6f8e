"""The fit to the evidence: the last 3D stage, a short optimisation over the whole sequence and both people.

CloseInt, BUDDI and CloseApp end with such a stage: the networks give a plausible two-person motion (the
learned interaction prior), and a fit makes it agree with what the image shows. Here the evidence is

* the detected 2D keypoints (SMPL-24 layout, with confidences) through the camera intrinsics, and
* MediaPipe's metric "world" landmarks mapped onto SMPL-24 (root-relative, camera-aligned axes): 3D pose
  evidence trained on real images, used as bone directions in each person's own torso frame, so that
  neither MediaPipe's guess of the body's size nor its guess of the global orientation enters the fit.

Objective (every term a mean of squared residuals divided by a sigma, so the weights read as "how many
sigmas"; see `EvidenceFitConfig` for each sigma and why):

    E = E_2D + w_3D E_3D + E_rot + E_pos + E_acc + w_c E_contact + w_p E_pen + w_l E_limits
        + w_g (E_ground + E_tilt) + E_shape [+ E_stature]

* E_2D: Geman-McClure on the reprojection error in person heights, confidence-weighted, over the keypoints
  that are confident and inside the image. Joints outside the image or below the confidence are left to the
  priors, so half-visible people stay whole. The detector's neck and pelvis are midpoints of its shoulders
  and hips (not SMPL's joint centres): they carry no evidence of their own and are left out.
* E_3D: squared chord between the fitted and MediaPipe's unit bone directions (limbs, shoulder line, head,
  feet; `socialmirror.body.bones`) in the torso frame over each bone's measured error
  (`socialmirror.data.world_landmarks`: on rendered bodies of known pose the legs are the most reliable,
  6-10 degrees median, the forearms the least, 21-27), weighted by MediaPipe's visibility of both ends.
* E_rot, E_pos: closeness to the diffusion output (the learned interaction prior): local joint rotations
  (Frobenius) and pelvis-relative joints (metres); they decide what the image does not show.
* E_acc: joint acceleration (m / frame^2). It is switched to 1% of its weight for the first
  `smooth_warmup` share of the iterations: a strong coupling between frames from the start makes the
  problem ill-conditioned for Adam (measured on the real 16-frame clip: 150 iterations reach 5.0% of the
  person's height with the full term from the start, 0.9% with the warm-up).
* E_contact: the annotated contacts, a Huber hinge on the joint distance above the contact radius.
* E_pen: overlap depth of the two bodies' bone spheres (`socialmirror.losses.spheres`).
* E_limits: the IK's joint limits (hinged knees and elbows, maximum angles elsewhere).
* E_ground: each person's lowest foot joint on one shared floor (a plane whose normal stays near the world's
  up, Huber so that a jump or a sit does not drag it), and E_shape: each person's shape near the networks'.
  In one view a body's size and its depth are one ambiguity; a floor both people stand on ties the two
  people's sizes and depths together (docs/architecture.md: what one view can and cannot tell).
  Measured on the real clip: the two fighters' depths 3.8 / 5.1 m without the floor and shape, 3.9 / 4.8 m
  with them (they fight at arm's length: the image cannot give their true distance).
* E_stature, only where the user states a person's standing height (`FitEvidence.statures`, `reconstruct
  --statures`): the shape's height held to it. The person starts with a shape of that height, moved along the
  camera ray by the ratio of the heights (`at_stated_heights`): the size that one view cannot give, given.

Variables (`FitVariables`): per frame and person the 24 local rotations (6D) and the pelvis translation, per
person the shape (anny phenotypes through a sigmoid), and the floor. Adam with a cosine-decayed step.
`fit_to_evidence` returns the fitted motion and a `FitReport` with every term before and after.

Stages: (1) `place_in_depth`, each person moved along their ray to where their body spans their keypoints;
(2) `toward_floor_ratio`, the pair's depth ratio moved halfway to the one their feet give on the floor under
the given up (`geometry.ground.floor_depth_log_ratio`), each person resized about the camera: the relative size
that E leaves to the networks, taken half from the floor's geometry; (3) the descent on E, its priors held at
the resized bodies (so contacts and penetration settle at the new sizes: the same step after the descent left
them apart or overlapping, measured: README, issue 22).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from socialmirror.body.base import BodyModel
from socialmirror.body.bones import BONE_INDEX, EVIDENCE_BONES, TORSO_FRAME_JOINTS, bone_directions, bone_key
from socialmirror.body.ik import JointLimits
from socialmirror.body.kinematics import forward_kinematics
from socialmirror.body.skeleton import JOINT_INDEX, NUM_JOINTS
from socialmirror.data.world_landmarks import WorldErrorModel, default_world_error
from socialmirror.geometry.camera import in_image, project, translation_from_keypoints
from socialmirror.geometry.ground import floor_depth_log_ratio
from socialmirror.geometry.rotations import matrix_to_6d, sixd_to_matrix
from socialmirror.losses.robust import geman_mcclure, huber
from socialmirror.losses.spheres import body_spheres

# Keypoints of the detector's SMPL-24 layout that are midpoints of others (no evidence of their own).
DERIVED_KEYPOINTS: tuple[str, ...] = ("pelvis", "neck")


@dataclass
class EvidenceFitConfig:
    enabled: bool = True
    iterations: int = 150
    lr: float = 0.03
    smooth_warmup: float = 0.5  # share of the iterations with the acceleration term at 1% (conditioning)
    min_confidence: float = 0.3  # keypoints below it are left to the priors
    # The detector's error on rendered bodies of known pose is ~2.5% of the person's height (median, the
    # embedded sample): the 2D sigma sits there; Geman-McClure saturates at 10% (mis-detections).
    reprojection_sigma: float = 0.03
    reprojection_robust_scale: float = 0.1
    world_weight: float = 1.0  # MediaPipe's 3D, each bone weighed by its measured error (data.world_landmarks)
    rotation_sigma: float = 0.5  # Frobenius distance of local rotations to the diffusion output
    position_sigma: float = 0.25  # m, pelvis-relative joints to the diffusion output
    acceleration_sigma: float = 0.03  # m / frame^2 (about 27 m/s^2 at 30 fps: a fast strike)
    contact_weight: float = 1.0
    contact_radius: float = 0.08  # m: joints sit inside the limbs, touching surfaces leave them apart
    contact_sigma: float = 0.05  # m
    penetration_weight: float = 1.0
    penetration_sigma: float = 0.02  # m of sphere overlap (mean over the overlapping pairs of a frame)
    limit_weight: float = 1.0
    limit_sigma: float = 0.05
    # Shared floor: each person's lowest foot joint on one ground plane (normal near the world's up). With the
    # shape free it ties the two people's sizes and depths together, which one view alone leaves open.
    ground_weight: float = 1.0
    ground_sigma: float = 0.05  # m
    # How far the floor's normal may turn from the given up (~17 degrees). Nearer (0.05, 0.12) placed the pair
    # better on the validation split but worse on held-out data, with the up estimated from the people
    # (geometry.ground) as with a level camera's (README, issue 22).
    ground_tilt_sigma: float = 0.3
    fit_shape: bool = True  # body shape (anny phenotypes) per person, kept near the networks' shape
    # Stage 1 (`place_in_depth`): each person first moved in depth to where their body spans their keypoints,
    # by the part of the log-depth factor beyond the tolerance: the estimated bodies' stature is off by about
    # 11% (190 mm, measured on the CMU pair and a synthesized validation split), and so is a depth from size.
    depth_from_keypoints: bool = True
    depth_tolerance: float = 0.1
    shape_sigma: float = 0.15  # phenotype units (each in [0, 1])
    stature_sigma: float = 0.01  # m: a stated height (`FitEvidence.statures`) holds the shape's height to it
    # Stage 2 (`toward_floor_ratio`): before the descent, the pair's log depth ratio moved by this share towards
    # the floor's (where each person's own lowest foot meets the floor under the given up; not with stated
    # heights); 0 switches it off. Measured under render: README, "The pair's depth ratio from the floor".
    floor_ratio_weight: float = 0.5
    # The descent's gradient is summed over spans of this many frames, one span's graph in memory at a time:
    # the same objective and gradient as the whole sequence at once, in memory that does not grow with it.
    # Each span costs a fixed overhead per iteration (spans of 256 frames made a 1547-frame fit 2.3x slower),
    # and a span's graph takes ~65 kB a frame: 2048 frames (68 s at 30 fps) hold ~130 MB.
    span_frames: int = 2048

    def __post_init__(self):
        if self.iterations < 0:
            raise ValueError("fit.iterations must be >= 0")
        if self.span_frames < 1:
            raise ValueError("fit.span_frames must be >= 1")
        for name in ("reprojection_sigma", "reprojection_robust_scale", "rotation_sigma",
                     "position_sigma", "acceleration_sigma", "contact_sigma", "penetration_sigma", "limit_sigma",
                     "ground_sigma", "ground_tilt_sigma", "shape_sigma", "stature_sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"fit.{name} must be positive")


@dataclass
class FitEvidence:
    """What the image says about both people over T frames (numpy; NaN or confidence 0 where unknown)."""

    keypoints2d: np.ndarray  # (T, 2, 24, 3) u, v, confidence
    intrinsics: np.ndarray  # (3, 3)
    image_size: tuple[int, int]  # (W, H)
    world_joints: np.ndarray | None = None  # (T, 2, 24, 3) root-relative, camera-aligned axes, metres
    world_confidence: np.ndarray | None = None  # (T, 2, 24)
    # Annotated contacts unrolled per frame: (frame, joint of person 0, joint of person 1, weight).
    contacts: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    up: tuple[float, float, float] | None = None  # the world's up in the camera frame (None: no floor term)
    # Each person's standing height (m) where the user knows it, NaN where not (None: neither is known).
    statures: np.ndarray | None = None


@dataclass
class FittedMotion:
    rotmats: np.ndarray  # (T, 2, 24, 3, 3)
    transl: np.ndarray  # (T, 2, 3)
    joints: np.ndarray  # (T, 2, 24, 3)
    shape: np.ndarray  # (2, S)


FOOT_JOINTS: tuple[str, ...] = ("left_ankle", "right_ankle", "left_foot", "right_foot")
_PAIR_REFRESH = 5  # descent iterations between searches for sphere pairs near contact
_PAIR_MARGIN = 0.08  # m: pairs this far from touching are candidates until the next search
_PAIR_SEARCH_FRAMES = 64


@dataclass
class FitVariables:
    """What the fit moves: local rotations, pelvis translations, per-person shape, the floor (unit normal
    pointing up and offset: a point p is n.p + d above it)."""
    rotmats: Tensor  # (T, 2, 24, 3, 3)
    transl: Tensor  # (T, 2, 3)
    shape: Tensor  # (2, S)
    floor_normal: Tensor  # (3,)
    floor_offset: Tensor  # ()


@dataclass(frozen=True)
class FrameSpan:
    """Frames [start, stop) of a sequence whose share of the objective is taken, with ``held``, the frames
    the variables are given for: the span and one neighbour each side (the acceleration needs them)."""
    start: int
    stop: int
    held: slice

    @classmethod
    def whole(cls, num_frames: int) -> "FrameSpan":
        return cls(0, num_frames, slice(0, num_frames))

    @classmethod
    def tiling(cls, num_frames: int, length: int) -> list["FrameSpan"]:
        """Spans of at most ``length`` frames that tile ``num_frames``."""
        return [cls(a, min(a + length, num_frames), slice(max(a - 1, 0), min(a + length + 1, num_frames)))
                for a in range(0, num_frames, length)]


@dataclass
class FitReport:
    before: dict[str, float]
    after: dict[str, float]
    seconds: float

    @property
    def objective_before(self) -> float:
        return float(sum(self.before.values()))

    @property
    def objective_after(self) -> float:
        return float(sum(self.after.values()))


def person_heights(keypoints2d: Tensor, confident: Tensor) -> Tensor:
    """(T, 2, 24, 3), (T, 2, 24) -> (2,) each person's median height in pixels over the frames with at
    least four confident keypoints (the unit of the 2D term: photos of any size compare)."""
    v = keypoints2d[..., 1]
    top = torch.where(confident, v, torch.full_like(v, float("inf"))).amin(-1)
    bottom = torch.where(confident, v, torch.full_like(v, float("-inf"))).amax(-1)
    height = torch.where(confident.sum(-1) >= 4, bottom - top, torch.full_like(top, float("nan")))
    med = torch.nanmedian(height.T.contiguous(), dim=1).values
    return torch.nan_to_num(med, nan=200.0).clamp_min(20.0)


class EvidenceObjective:
    """The objective of the module docstring for one sequence; ``terms(variables)`` gives each term."""

    def __init__(self, body: BodyModel, start: FitVariables, evidence: FitEvidence, config: EvidenceFitConfig,
                 world_error: WorldErrorModel | None = None):
        self.cfg = config
        self.body = body
        device = start.rotmats.device
        as_t = (lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device))  # noqa: E731
        self.start_shape = start.shape.detach()
        self.rest = body.rest_joints(self.start_shape)  # (2, 24, 3)
        if config.fit_shape:
            # The rest skeleton as a linear function of the shape around the start (central differences, one
            # batched body evaluation): a full body per iteration would cost ten times the rest of the fit.
            eps = 0.02
            S = self.start_shape.shape[-1]
            steps = torch.eye(S, device=device) * eps  # (S, S)
            probe = torch.cat([self.start_shape[:, None] + steps, self.start_shape[:, None] - steps], 1)  # (2, 2S, S)
            rest = body.rest_joints(probe)  # (2, 2S, 24, 3)
            self.rest_jacobian = ((rest[:, :S] - rest[:, S:]) / (2 * eps)).permute(0, 2, 3, 1)  # (2, 24, 3, S)
        self.statures = None
        if evidence.statures is not None and config.fit_shape:
            # The standing height as a linear function of the shape around the start, as the rest skeleton.
            with torch.enable_grad():
                probe = self.start_shape.clone().requires_grad_(True)
                height = body.standing_height(probe)
                (self.height_jacobian,) = torch.autograd.grad(height.sum(), probe)  # (2, S)
            self.start_height = height.detach()
            self.statures = as_t(evidence.statures)
        self.K = as_t(evidence.intrinsics)
        kp = as_t(evidence.keypoints2d)
        finite = torch.isfinite(kp).all(-1)
        kp = torch.nan_to_num(kp)
        confident = finite & in_image(kp, evidence.image_size) & (kp[..., 2] > config.min_confidence)
        self.heights = person_heights(kp, confident)  # (2,)
        use = torch.ones(NUM_JOINTS, device=device)
        use[[JOINT_INDEX[n] for n in DERIVED_KEYPOINTS]] = 0.0
        self.kp_uv = kp[..., :2]
        self.kp_weight = torch.where(confident, kp[..., 2], torch.zeros_like(kp[..., 2])) * use
        self.num_frames = int(kp.shape[0])
        self.kp_norm = self.kp_weight.sum().clamp_min(1.0)
        self.world_dirs = self.world_weight = None
        if evidence.world_joints is not None and config.world_weight > 0:
            world = as_t(evidence.world_joints)
            ok = torch.isfinite(world).all(-1)
            conf = as_t(evidence.world_confidence) if evidence.world_confidence is not None else ok.float()
            conf = torch.where(ok, torch.nan_to_num(conf), torch.zeros_like(conf))
            idx = BONE_INDEX.to(device)
            self.world_dirs = bone_directions(torch.nan_to_num(world))
            self.world_weight = torch.minimum(conf[..., idx[:, 0]], conf[..., idx[:, 1]])
            error = world_error or default_world_error()
            sigma = torch.tensor([error.bone_chord[bone_key(a, b)] for a, b in EVIDENCE_BONES], device=device)
            self.world_precision = 1.0 / sigma.clamp_min(0.05).square()
            # A frame's torso frame needs both hips, the pelvis and the neck.
            torso = [JOINT_INDEX[n] for n in TORSO_FRAME_JOINTS]
            self.world_weight = self.world_weight * ok[..., torso].all(-1, keepdim=True)
            self.world_norm = self.world_weight.sum().clamp_min(1.0)
        self.up = None if evidence.up is None or config.ground_weight <= 0 else as_t(evidence.up)
        if self.up is not None:
            self.up = self.up / self.up.norm().clamp_min(1e-6)
        self.init_rotmats = start.rotmats.detach()
        with torch.no_grad():
            j0 = self.joints(start)
        self.init_relative = j0 - j0[..., :1, :]
        self.contacts = as_t(np.asarray(evidence.contacts, dtype=np.float64).reshape(-1, 4))
        self.contact_norm = self.contacts[:, 3].sum().clamp_min(1.0)
        self.spheres = body_spheres()
        self.limits = JointLimits(self.rest)
        self.feet = torch.tensor([JOINT_INDEX[n] for n in FOOT_JOINTS], device=device)

    def joints(self, v: FitVariables) -> Tensor:
        rest = self.rest
        if self.cfg.fit_shape:
            rest = rest + (self.rest_jacobian @ (v.shape - self.start_shape)[:, None, :, None])[..., 0]
        joints, _ = forward_kinematics(rest, v.rotmats)
        return joints + v.transl[..., None, :]

    def lowest_foot(self, joints: Tensor, normal: Tensor, offset: Tensor) -> Tensor:
        """(T, 2) each person's lowest foot joint above the floor (a soft minimum over the feet, metres)."""
        normal = normal / normal.norm().clamp_min(1e-6)
        h = joints[..., self.feet, :] @ normal + offset
        return -0.02 * torch.logsumexp(-h / 0.02, dim=-1)

    def terms(self, v: FitVariables, pairs: Tensor | None = None, smooth_scale: float = 1.0,
              span: "FrameSpan | None" = None) -> dict[str, Tensor]:
        """Each term's value at ``v`` (a pure function of its arguments). ``pairs``: the sphere pairs the
        penetration term looks at (``sphere_pairs``; found at ``v`` when None); ``smooth_scale``: the weight of
        the acceleration term (the descent's warm-up lowers it).

        ``span``: ``v`` holds only the frames ``span.held`` and the terms are that span's share of the
        sequence's objective (every normaliser is the whole sequence's; the terms of the shared variables,
        floor tilt and shape, come with the first span), so the shares of spans that tile the sequence add up
        to the whole objective and their gradients to its gradient (`_descend` in bounded memory)."""
        cfg = self.cfg
        span = span or FrameSpan.whole(self.num_frames)
        core = slice(span.start - span.held.start, span.stop - span.held.start)  # the span's frames within v
        frames = slice(span.start, span.stop)
        T = self.num_frames
        held_joints = self.joints(v)
        joints, rotmats = held_joints[core], v.rotmats[core]
        out: dict[str, Tensor] = {}
        err = (project(joints, self.K) - self.kp_uv[frames]) / self.heights[None, :, None, None]
        rho = geman_mcclure(err.square().sum(-1), cfg.reprojection_robust_scale)
        out["reprojection"] = (rho * self.kp_weight[frames]).sum() / self.kp_norm / cfg.reprojection_sigma ** 2
        if self.world_dirs is not None:
            chord = (bone_directions(joints) - self.world_dirs[frames]).square().sum(-1)
            out["world3d"] = cfg.world_weight * (chord * self.world_precision * self.world_weight[frames]).sum() \
                / self.world_norm
        rot_residual = (rotmats[:, :, 1:] - self.init_rotmats[frames, :, 1:]).square().sum((-1, -2))
        out["rotation_prior"] = rot_residual.sum() / (T * rot_residual[0].numel()) / cfg.rotation_sigma ** 2
        relative = joints - joints[..., :1, :]
        pos_residual = (relative - self.init_relative[frames]).square().sum(-1)
        out["position_prior"] = pos_residual.sum() / (T * pos_residual[0].numel()) / cfg.position_sigma ** 2
        if T > 2:
            # Centres 1..T-2 whose frame lies in the span; the span holds their neighbours.
            lo, hi = max(span.start, 1), min(span.stop, T - 1)
            c = slice(lo - span.held.start, hi - span.held.start)
            j = held_joints
            acc = (j[c.start + 1:c.stop + 1] - 2 * j[c] + j[c.start - 1:c.stop - 1]).square().sum(-1)
            out["acceleration"] = smooth_scale * acc.sum() / ((T - 2) * joints[0, ..., 0].numel()) \
                / cfg.acceleration_sigma ** 2
        if len(self.contacts) and cfg.contact_weight > 0:
            rows = self.contacts[(self.contacts[:, 0] >= span.start) & (self.contacts[:, 0] < span.stop)]
            f, ja, jb, w = rows.unbind(-1)
            f, ja, jb = f.long() - span.start, ja.long(), jb.long()
            gap = torch.relu((joints[f, 0, ja] - joints[f, 1, jb]).norm(dim=-1) - cfg.contact_radius)
            out["contact"] = cfg.contact_weight * (w * 2.0 * huber(gap, cfg.contact_sigma)).sum() \
                / self.contact_norm / cfg.contact_sigma ** 2
        if cfg.penetration_weight > 0:
            if pairs is None:
                pairs = self.sphere_pairs(joints)
            else:
                pairs = pairs[(pairs[:, 0] >= span.start) & (pairs[:, 0] < span.stop)]
                pairs = pairs - pairs.new_tensor([span.start, 0, 0])
            out["penetration"] = cfg.penetration_weight * self._penetration(joints, pairs) / T \
                / cfg.penetration_sigma ** 2
        if cfg.limit_weight > 0:
            # The penalty is a mean over frames: the span's mean weighed by its share of the frames.
            out["joint_limits"] = cfg.limit_weight * self.limits.penalty(rotmats) * (len(joints) / T) \
                / cfg.limit_sigma ** 2
        shared = span.start == 0  # the terms of the shared variables come with the first span
        if self.up is not None:
            lowest = self.lowest_foot(joints, v.floor_normal, v.floor_offset)
            # Huber: a person who jumps or sits does not drag the floor along.
            out["ground"] = cfg.ground_weight * 2.0 * huber(lowest.abs(), cfg.ground_sigma).sum() \
                / (T * lowest[0].numel()) / cfg.ground_sigma ** 2
            tilt = (v.floor_normal / v.floor_normal.norm().clamp_min(1e-6) - self.up).square().sum()
            out["ground_tilt"] = cfg.ground_weight * tilt / cfg.ground_tilt_sigma ** 2 * shared
        if cfg.fit_shape:
            out["shape_prior"] = (v.shape - self.start_shape).square().sum(-1).mean() / cfg.shape_sigma ** 2 \
                * shared
        if self.statures is not None:
            known = torch.isfinite(self.statures)
            height = self.start_height + (self.height_jacobian * (v.shape - self.start_shape)).sum(-1)
            gap = torch.where(known, height - torch.nan_to_num(self.statures), torch.zeros_like(height))
            out["stature"] = gap.square().sum() / known.sum().clamp_min(1) / cfg.stature_sigma ** 2 * shared
        return out

    def sphere_pairs(self, joints: Tensor) -> Tensor:
        """(N, 3) rows (frame, sphere of person 0, sphere of person 1) of the sphere pairs within
        ``_PAIR_MARGIN`` of touching: the candidates of the penetration term, found without gradient."""
        with torch.no_grad():
            radii = self.spheres.radii.to(joints)
            reach = radii[:, None] + radii[None, :]
            found = []
            # A few frames at a time: all sphere-to-sphere distances of a long video at once took 80 MB a
            # thousand frames.
            for a in range(0, joints.shape[0], _PAIR_SEARCH_FRAMES):
                j = joints[a:a + _PAIR_SEARCH_FRAMES]
                near = torch.nonzero(reach - torch.cdist(self.spheres.centres(j[:, 0]), self.spheres.centres(j[:, 1]))
                                     > -_PAIR_MARGIN)
                found.append(near + near.new_tensor([a, 0, 0]))
            return torch.cat(found)

    def _penetration(self, joints: Tensor, hits: Tensor) -> Tensor:
        """Per frame, the mean squared overlap of the two bodies' overlapping sphere pairs among ``hits``
        (their count a constant of the step, as in the guidance term), summed over the frames."""
        ca, cb = self.spheres.centres(joints[:, 0]), self.spheres.centres(joints[:, 1])
        radii = self.spheres.radii.to(joints)
        reach = radii[:, None] + radii[None, :]
        if hits.numel() == 0:
            return joints.sum() * 0.0
        f, i, k = hits.unbind(-1)
        gap = (ca[f, i] - cb[f, k]).square().sum(-1).clamp_min(1e-12).sqrt()
        overlap = torch.relu(reach[i, k] - gap)
        count = torch.zeros(joints.shape[0], device=joints.device).index_add(0, f, (overlap > 0).to(gap).detach())
        per_pair = overlap.square() / count.clamp_min(1.0)[f]
        return per_pair.sum()


def _total(terms: dict[str, Tensor]) -> Tensor:
    return torch.stack(list(terms.values())).sum()


def fit_to_evidence(body: BodyModel, rotmats: np.ndarray, transl: np.ndarray, shape: np.ndarray,
                    evidence: FitEvidence, config: EvidenceFitConfig | None = None
                    ) -> tuple[FittedMotion, FitReport]:
    """Fit both people's motion (rotmats (T, 2, 24, 3, 3), transl (T, 2, 3), shape (2, S): the diffusion
    output) to ``evidence``. The result never has a higher objective than the start: the best iterate is
    kept."""
    cfg = config or EvidenceFitConfig()
    t_start = time.perf_counter()
    device = body.device
    as_t = (lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device))  # noqa: E731
    up = as_t(evidence.up if evidence.up is not None else (0.0, -1.0, 0.0))
    start = FitVariables(as_t(rotmats), as_t(transl), as_t(shape), up / up.norm(), torch.zeros((), device=device))
    if evidence.statures is not None:
        start = at_stated_heights(body, start, evidence.statures)
    objective = EvidenceObjective(body, start, evidence, cfg)
    if cfg.depth_from_keypoints:
        start = place_in_depth(objective, start, cfg.depth_tolerance)
    if cfg.floor_ratio_weight > 0 and evidence.up is not None and evidence.statures is None:
        start = toward_floor_ratio(body, start, evidence, objective.heights, cfg.floor_ratio_weight)
        objective = EvidenceObjective(body, start, evidence, cfg)  # the priors hold the resized bodies
    with torch.no_grad():  # the floor starts under the people's median lowest foot
        start.floor_offset = -torch.median(objective.lowest_foot(objective.joints(start), start.floor_normal,
                                                                 torch.zeros((), device=device)))
        before = {k: float(v) for k, v in objective.terms(start).items()}
    # An optimisation: it needs gradients even when called under the estimator's no_grad.
    with torch.enable_grad():
        best = _descend(objective, start, cfg, sum(before.values()))
    with torch.no_grad():
        after = {k: float(v) for k, v in objective.terms(best).items()}
        joints = objective.joints(best)
    numpy = (lambda t: t.detach().cpu().numpy())  # noqa: E731
    fitted = FittedMotion(numpy(best.rotmats), numpy(best.transl), numpy(joints), numpy(best.shape))
    return fitted, FitReport(before, after, time.perf_counter() - t_start)


def at_stated_heights(body: BodyModel, start: FitVariables, statures: np.ndarray) -> FitVariables:
    """Each person whose standing height is known (``statures`` (2,), NaN where not) given a shape of that
    height (`BodyModel.shape_of_height`) and moved along the camera ray by the ratio of the heights: a body
    k times taller spans the same pixels k times farther away, so the image is unchanged and the fit starts
    from the depth that the known size gives."""
    target = torch.as_tensor(np.asarray(statures, dtype=np.float32), device=start.shape.device)
    known = torch.isfinite(target)
    if not bool(known.any()):
        return start
    with torch.no_grad():
        before = body.standing_height(start.shape)
        sized = body.shape_of_height(start.shape, torch.where(known, target, before))
        ratio = torch.where(known, body.standing_height(sized) / before.clamp_min(0.1), torch.ones_like(before))
        shape = torch.where(known[:, None], sized, start.shape)
    return FitVariables(start.rotmats, start.transl * ratio[:, None], shape, start.floor_normal, start.floor_offset)


def toward_floor_ratio(body: BodyModel, fitted: FitVariables, evidence: FitEvidence, height_px: Tensor,
                       weight: float, min_confidence: float = 0.5) -> FitVariables:
    """Stage 2 of the fit: the two people's depth ratio moved by ``weight`` of the way (in log) towards the one
    their feet give on one floor (``geometry.ground.floor_depth_log_ratio``), each person resized about the
    camera (a shape of the new height, the pelvis moved along its ray by the same factor: the image is
    unchanged) and their mean log depth kept. Why: where the fit's sizes disagree with the floor, the sizes are
    the networks' guess and the floor is geometry (README, issue 22); both err, so the two are averaged."""
    kp = np.asarray(evidence.keypoints2d, dtype=np.float64)[:, :, [JOINT_INDEX[n] for n in FOOT_JOINTS]]
    feet = np.where((kp[..., 2:] >= min_confidence), kp, np.nan)
    height = np.broadcast_to(height_px.detach().cpu().numpy()[None], kp.shape[:2])  # each person's median
    floor = floor_depth_log_ratio(feet, height, np.asarray(evidence.intrinsics, dtype=np.float64), evidence.up)
    if floor is None:
        return fitted
    with torch.no_grad():
        depth = fitted.transl[..., 2].median(dim=0).values.clamp_min(0.1)  # (2,)
        step = weight * (floor - float(torch.log(depth[0] / depth[1])))
        heights = body.standing_height(fitted.shape).cpu().numpy() * np.exp([step / 2, -step / 2])
    return at_stated_heights(body, fitted, heights)


def place_in_depth(objective: EvidenceObjective, start: FitVariables, tolerance: float = 0.0,
                   min_points: int = 6) -> FitVariables:
    """Stage 1 of the fit: each person moved along the camera ray through their pelvis towards the depth at
    which their body, at its current pose and size, spans their keypoints (the median over the frames with at
    least ``min_points`` confident keypoints of each frame's least-squares translation,
    ``geometry.camera.translation_from_keypoints``), by the part of the factor beyond ``tolerance`` (in log
    depth): a body's size is itself uncertain, so a smaller disagreement is no evidence against the networks.

    Why: the networks often place both people at one depth, and the descent cannot bring them apart from
    there: the penetration term walls one body off behind the other (measured on the CMU pair under render:
    the pair's depth difference 0.12 m where it is 0.9 m). The image's evidence of depth is each body's
    size in pixels; one factor per person keeps the networks' motion in depth over time."""
    with torch.no_grad():
        relative = objective.joints(start) - start.transl[..., None, :]
        solved = translation_from_keypoints(relative, objective.kp_uv, objective.kp_weight, objective.K)
        usable = ((objective.kp_weight > 0).sum(-1) >= min_points) & (solved[..., 2] > 0.1) \
            & (start.transl[..., 2] > 0.1)
        ratio = torch.where(usable, solved[..., 2] / start.transl[..., 2].clamp_min(0.1),
                            torch.full_like(solved[..., 2], float("nan")))
        factor = torch.nan_to_num(torch.nanmedian(ratio.T.contiguous(), dim=1).values, nan=1.0)  # (2,)
        # Only the part beyond the body size's own uncertainty is evidence against the networks' depth.
        log_factor = factor.log()
        factor = (log_factor.sign() * (log_factor.abs() - tolerance).clamp_min(0.0)).exp()
    return FitVariables(start.rotmats, start.transl * factor[:, None], start.shape, start.floor_normal,
                        start.floor_offset)


def _descend(objective: EvidenceObjective, start: FitVariables, cfg: EvidenceFitConfig,
             start_value: float) -> FitVariables:
    """Adam on (6D rotations, translations, shape, floor) from ``start``; returns the better of the start
    and the end point."""
    if cfg.iterations <= 0:
        return start
    anny = objective.body.name == "anny"  # phenotypes live in [0, 1]: a sigmoid keeps the optimiser inside
    r6 = matrix_to_6d(start.rotmats).clone().requires_grad_(True)
    transl = start.transl.clone().requires_grad_(True)
    shape_free = (torch.logit(start.shape.clamp(1e-4, 1 - 1e-4)) if anny else start.shape.clone()).requires_grad_(True)
    normal = start.floor_normal.clone().requires_grad_(True)
    offset = start.floor_offset.clone().requires_grad_(True)
    params = [r6, transl] + ([shape_free] if cfg.fit_shape else []) + \
        ([normal, offset] if objective.up is not None else [])

    def current(frames: slice = slice(None)) -> FitVariables:
        shape = (torch.sigmoid(shape_free) if anny else shape_free) if cfg.fit_shape else start.shape
        return FitVariables(sixd_to_matrix(r6[frames]), transl[frames], shape, normal, offset)

    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.iterations, eta_min=cfg.lr * 0.05)
    warm = int(round(cfg.smooth_warmup * cfg.iterations))
    # The sphere-pair search cost more than the rest of the fit, and the bodies move a few millimetres a step:
    # the start's pairs serve the first iterations, then they are searched again every _PAIR_REFRESH.
    with torch.no_grad():
        pairs = objective.sphere_pairs(objective.joints(start))
    # The gradient is accumulated span by span: one span's graph at a time, so the fit's memory is bounded by
    # the span's length, not the video's.
    spans = FrameSpan.tiling(objective.num_frames, cfg.span_frames)
    for it in range(cfg.iterations):
        if (it + 1) % _PAIR_REFRESH == 0:
            with torch.no_grad():
                pairs = objective.sphere_pairs(objective.joints(current()))
        opt.zero_grad(set_to_none=True)
        for span in spans:
            terms = objective.terms(current(span.held), pairs, smooth_scale=0.01 if it < warm else 1.0, span=span)
            _total(terms).backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        end = current()
        end = FitVariables(end.rotmats.detach(), end.transl.detach(), end.shape.detach(), end.floor_normal.detach(),
                           end.floor_offset.detach())
        value = float(_total(objective.terms(end)))
    return end if np.isfinite(value) and value <= start_value else start


__all__ = ["DERIVED_KEYPOINTS", "EvidenceFitConfig", "EvidenceObjective", "FOOT_JOINTS", "FitEvidence", "FitReport",
           "FitVariables", "FittedMotion", "FrameSpan", "at_stated_heights", "fit_to_evidence", "person_heights",
           "place_in_depth"]
