"""The 3D estimator (docs/architecture.md, steps 4-8): 2D keypoints and boxes of two people -> their 3D
motion.

`TwoPersonMotionEstimator(bundle, body, method, device, seed).estimate(observation, annotations,
text_embeddings)` (the observation: a ``socialmirror.data.observation.PairObservation``) runs, for a method preset (`socialmirror.inference.methods`):

1. windows: the sequence is cut into windows of L frames (the bundle's `clip_len`, 16), `stride` (8) apart,
   the last one aligned to the end (`socialmirror.windows.window_starts`); a sequence shorter than L is
   padded to L with frames marked missing (keypoint confidence 0, boxes repeated from the edge) and cropped
   back at the end. Windows go through the networks in batches of `batch_windows`, so memory does not grow
   with the sequence length.
2. per window: F_img (`observation_features`), the Initial Estimator's x_init (raw units), its joints
   (`motion_to_joints`), the Geometry Optimizer's joints (when geometry guidance is on), then DDIM sampling
   of the infiller (5 steps) from x_T ~ N(x_init, sigma^2), seeded per window, with the enabled guidance
   terms (`socialmirror.diffusion.guidance`) and the window's text (the annotation clip that overlaps it
   most; its confidence scales the ControlNet) and contacts (every annotated contact frame inside it);
3. the windows are blended into one sequence (`join_windows`, raised-cosine cross-fades over the overlaps),
   in the normalised motion space the refiner works in;
4. the Temporal Motion Refiner runs over the whole sequence (in overlapping chunks of `refine_chunk` frames,
   blended the same way, so memory stays bounded on long videos);
5. decoding: rotations, one shape per person (the mean over its observed frames), pelvis translations and
   joints in the camera frame;
6. the fit to the evidence (`socialmirror.inference.fit`, when the method's `fit.enabled`): the whole
   sequence and both people made to agree with the confident keypoints inside the image and MediaPipe's 3D,
   kept close to the networks' motion, with the annotated contacts, no interpenetration, smoothness and
   joint limits. ``x`` stays the networks' motion vectors (before the fit).

NaN guard: after every stage the person-frames with a non-finite value fall back to the previous stage's
output (initial estimate <- the training mean motion; Geometry Optimizer <- initial joints; infiller <-
x_init; refiner <- the joined infiller output; decoding <- the initial estimate), with a logged warning, so
the result is always finite.

Determinism: the only randomness is the start of sampling, drawn from a generator seeded by (seed, window
start frame) on the CPU, so the same seed gives the same result whatever the batch size or device order.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from socialmirror.body.base import BodyModel
from socialmirror.body.motion import MotionRepresentation, decode_motion, motion_to_joints, pooled_shape
from socialmirror.data.observation import PairObservation
from socialmirror.diffusion.guidance import (
    ContactGuidance,
    ContactTargets,
    GeometryGuidance,
    MotionDecoder,
    PenetrationGuidance,
    ReprojectionGuidance,
)
from socialmirror.diffusion.sampler import DDIMSampler, GuidanceTerm
from socialmirror.errors import UserError
from socialmirror.geometry.rotations import matrix_to_6d, sixd_to_matrix
from socialmirror.inference.fit import FitEvidence, fit_to_evidence
from socialmirror.inference.methods import METHOD_PRESETS, GuidanceWeights, MethodConfig, method_config
from socialmirror.models.bundle import ModelBundle
from socialmirror.semantics.annotations import Annotations, ClipAnnotation, contact_rows
from socialmirror.windows import join_windows, window_starts

log = logging.getLogger(__name__)

__all__ = ["METHOD_PRESETS", "GuidanceWeights", "MethodConfig", "MethodUnavailableError", "MotionEstimate",
           "TwoPersonMotionEstimator"]


class MethodUnavailableError(UserError, ValueError):
    """The bundle lacks a network that the requested method needs (one-line message)."""


# ----------------------------------------------------------------------------------------------- result
@dataclass
class MotionEstimate:
    """The 3D motion of both persons over T frames; camera frame (OpenCV axes), metres; numpy arrays."""

    rotmats: np.ndarray  # (T, 2, 24, 3, 3) SMPL-24 local rotations (0: global orientation, camera frame)
    pose6d: np.ndarray  # (T, 2, 24, 6)
    shape: np.ndarray  # (2, S) per person, the mean over its observed frames
    transl: np.ndarray  # (T, 2, 3) pelvis
    joints: np.ndarray  # (T, 2, 24, 3)
    x: np.ndarray  # (T, 2, D) the networks' final motion vectors, raw units (before the fit to the evidence)
    initial_joints: np.ndarray  # (T, 2, 24, 3) the Initial Estimator's joints (windows joined)
    geometry_joints: np.ndarray | None = None  # (T, 2, 24, 3) the Geometry Optimizer's, when it ran
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    method: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    def vertices(self, body: BodyModel, batch_frames: int = 64) -> np.ndarray:
        """Meshes (T, 2, V, 3) of the estimate with `body` (which must be the estimate's body model kind),
        skinned `batch_frames` frames at a time."""
        out = []
        shape = torch.as_tensor(self.shape, dtype=torch.float32, device=body.device)
        with torch.no_grad():
            for s in range(0, self.num_frames, batch_frames):
                rot = torch.as_tensor(self.rotmats[s:s + batch_frames], dtype=torch.float32, device=body.device)
                transl = torch.as_tensor(self.transl[s:s + batch_frames], dtype=torch.float32, device=body.device)
                out.append(body(rot, shape.expand(rot.shape[0], -1, -1), transl).vertices.cpu().numpy())
        return np.concatenate(out, axis=0)

    _ARRAYS = ("rotmats", "pose6d", "shape", "transl", "joints", "x", "initial_joints", "geometry_joints")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays (for npz caches); `from_arrays` reads it back."""
        arrays = {k: getattr(self, k) for k in self._ARRAYS if getattr(self, k) is not None}
        arrays["method"] = np.array(self.method)
        arrays["timing_names"] = np.array(list(self.timings), dtype=str)
        arrays["timing_values"] = np.array(list(self.timings.values()), dtype=np.float64)
        arrays["warnings"] = np.array(self.warnings, dtype=str)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Any) -> "MotionEstimate":
        get = (lambda k: arrays[k] if k in arrays else None)
        names, values = get("timing_names"), get("timing_values")
        timings = {} if names is None else {str(n): float(v) for n, v in zip(names, values)}
        return cls(**{k: None if get(k) is None else np.asarray(get(k)) for k in cls._ARRAYS},
                   timings=timings, method=str(get("method") if get("method") is not None else ""),
                   warnings=[str(w) for w in (get("warnings") if get("warnings") is not None else [])])


# ----------------------------------------------------------------------------------------------- pieces
@dataclass
class _ObservationTensors:
    """The observation's network inputs as tensors, padded to at least one window; mask (T_pad, 2) True
    where detected."""

    keypoints2d: Tensor  # (T_pad, 2, 24, 3)
    boxes: Tensor  # (T_pad, 2, 3)
    K: Tensor  # (3, 3)
    mask: Tensor  # (T_pad, 2) bool
    num_frames: int  # T before padding
    world_joints: Tensor | None = None  # (T_pad, 2, 24, 3) MediaPipe's 3D, 0 where unknown
    world_confidence: Tensor | None = None  # (T_pad, 2, 24), 0 where unknown

    @property
    def padded_frames(self) -> int:
        return int(self.mask.shape[0])


@dataclass
class _WindowConditions:
    """Text and contacts of every window."""

    text: Tensor | None  # (W, 2, E) sentence embeddings, zeros where a window has no annotation
    text_weight: Tensor  # (W,) ControlNet weight (confidence or 1; 0 without annotation)
    contacts: list[list[tuple[int, int, int, float]]]  # per window: (frame, joint_a, joint_b, weight)


class _CrossAttentionCut(nn.Module):
    """Stand-in for the `independent` denoiser when a bundle has none: the two-branch infiller with every
    cross-attention query given no key, so no information flows from the other person (the CA output is
    reduced to its output bias). The network was trained with CA, so this is out of its training
    distribution: a separately trained independent model is what the baseline should use."""

    def __init__(self, infiller: nn.Module):
        super().__init__()
        self.infiller = infiller

    def forward(self, x_t: Tensor, t: Tensor, x_init: Tensor, img_features: Tensor | None = None,
                mask: Tensor | None = None, text_embedding: Tensor | None = None,
                text_weight: Tensor | float | None = None) -> Tensor:
        base = self.infiller.denoiser
        state = base.encode(x_t, t, x_init, img_features, mask)
        batch, _, length, _ = x_t.shape
        no_key = torch.zeros(batch * 2, 1, length, 1, dtype=torch.bool, device=x_t.device)
        masks = dataclasses.replace(state.masks, cross_mask=None, cross_has_key=no_key)
        out = base.transformer.run_blocks(state.h0, state.cond, masks=masks)
        return base.decode(out.hidden, x_init)


def _nonfinite_person_frames(values: Tensor, event_dims: int) -> Tensor:
    """(..., event) -> bool (...) True where any of the last `event_dims` dims is non-finite."""
    bad = ~torch.isfinite(values)
    for _ in range(event_dims):
        bad = bad.any(-1)
    return bad


def _fallback(stage: str, values: Tensor, previous: Tensor, event_dims: int, warnings: list[str]) -> Tensor:
    """values where finite, else `previous`, per person-frame; logs how many fell back."""
    bad = _nonfinite_person_frames(values, event_dims)
    if not bad.any():
        return values
    message = (f"{stage}: non-finite output on {int(bad.sum())} person-frame(s); using the previous stage's "
               f"output there")
    log.warning(message)
    warnings.append(message)
    return torch.where(bad.reshape(*bad.shape, *([1] * event_dims)), previous, values)


def _fill_missing_boxes(boxes: Tensor) -> Tensor:
    """Boxes with a non-finite value or a non-positive side are replaced by the nearest valid box of the same
    person (a missed detection keeps the box of the closest detected frame). (T, 2, 3)."""
    valid = torch.isfinite(boxes).all(-1) & (boxes[..., 2] > 0)
    if valid.all():
        return boxes
    out = boxes.clone()
    frames = torch.arange(boxes.shape[0], device=boxes.device)
    for p in range(boxes.shape[1]):
        good = frames[valid[:, p]]
        if good.numel() == 0:
            raise ValueError(f"person {p} has no valid box in any frame")
        nearest = good[(frames[:, None] - good[None, :]).abs().argmin(dim=1)]
        out[:, p] = boxes[nearest, p]
    return out


def _float_tensor(values, device: torch.device) -> Tensor:
    """numpy arrays, nested sequences or tensors (on any device) -> float32 tensor on `device`."""
    if isinstance(values, Tensor):
        return values.detach().to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=device)


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class _StageTimer:
    """Seconds per stage of ``estimate``, summed over the window batches; ``finish`` adds the total."""

    STAGES = ("initial", "geometry", "infiller", "join", "refiner", "decode", "fit")

    def __init__(self):
        self.seconds = {name: 0.0 for name in self.STAGES}
        self._start = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0

    def finish(self) -> dict[str, float]:
        return {**self.seconds, "total": time.perf_counter() - self._start}


@dataclass
class _WindowInputs:
    """One batch of windows' inputs, persons first: keypoints2d (B, 2, L, 24, 3), boxes (B, 2, L, 3), mask
    (B, 2, L), MediaPipe's 3D (B, 2, L, 24, 3) and (B, 2, L, 24) where given."""

    keypoints2d: Tensor
    boxes: Tensor
    mask: Tensor
    world_joints: Tensor | None
    world_confidence: Tensor | None


def _window_inputs(obs: _ObservationTensors, idx: Tensor) -> _WindowInputs:
    """The windows whose frames ``idx`` (B, L) index the padded sequence."""
    persons_first = (lambda t: None if t is None else t[idx].transpose(1, 2))  # (B, L, 2, ...) -> (B, 2, L, ...)
    return _WindowInputs(persons_first(obs.keypoints2d), persons_first(obs.boxes), persons_first(obs.mask),
                         persons_first(obs.world_joints), persons_first(obs.world_confidence))


@dataclass
class _JoinedSequence:
    """The windows joined over the padded sequence, persons first: the raw initial motion (2, T_pad, D), its
    joints (2, T_pad, 24, 3), the Geometry Optimizer's (or None) and the sampled motion (normalised)."""

    x_init: Tensor
    initial_joints: Tensor
    geometry_joints: Tensor | None
    sampled: Tensor


@dataclass
class _WindowOutputs:
    """Per window batch: the initial motion, its joints, the Geometry Optimizer's joints, the sample."""

    x_init: list[Tensor] = field(default_factory=list)
    initial_joints: list[Tensor] = field(default_factory=list)
    geometry_joints: list[Tensor | None] = field(default_factory=list)
    sampled: list[Tensor] = field(default_factory=list)

    def append(self, x_init: Tensor, initial_joints: Tensor, geometry_joints: Tensor | None, sampled: Tensor):
        self.x_init.append(x_init)
        self.initial_joints.append(initial_joints)
        self.geometry_joints.append(geometry_joints)
        self.sampled.append(sampled)

    def joined(self, starts: Sequence[int], padded_frames: int) -> _JoinedSequence:
        join = (lambda windows, time_dim: join_windows(torch.cat(windows), starts, padded_frames, time_dim=time_dim))
        geometry = None if self.geometry_joints[0] is None else join(self.geometry_joints, -3)
        return _JoinedSequence(join(self.x_init, -2), join(self.initial_joints, -3), geometry,
                               join(self.sampled, -2))


# ----------------------------------------------------------------------------------------------- estimator
class TwoPersonMotionEstimator:
    """Runs one method (a preset name or a `MethodConfig`) of a `ModelBundle` on two persons' observations."""

    def __init__(self, bundle: ModelBundle, body: BodyModel, method: str | MethodConfig = "socialmirror",
                 device: str | torch.device = "cpu", seed: int = 0):
        self.config = config = method_config(method)
        self.device = torch.device(device)
        self.seed = int(seed)
        self.bundle = bundle.to(self.device).eval()
        self.body = body
        if body.shape_dim != bundle.config.shape_dim:
            raise ValueError(f"the bundle's motions have {bundle.config.shape_dim} shape values, the body model "
                             f"{body.name!r} has {body.shape_dim}")
        self.representation: MotionRepresentation = bundle.representation
        self.window = bundle.config.clip_len  # L: the clip length the bundle's networks were trained on
        if config.stride > self.window:
            raise ValueError(f"stride {config.stride} exceeds the bundle's clip length {self.window}")
        self.weights: GuidanceWeights = config.guidance
        self.fallback_motion = self._fallback_motion()
        self.geometry_network = self._geometry_network() if self.weights.geometry != 0 else None
        self.denoiser = self._denoiser()
        self.sampler = DDIMSampler(bundle.diffusion(), config.sampler_config())
        self.guidance_terms: list[GuidanceTerm] = [
            term for term in (
                GeometryGuidance(self.weights.geometry, name="geometry"),
                ContactGuidance(self.weights.contact, radius=config.contact_radius, name="contact"),
                PenetrationGuidance(self.weights.penetration, name="penetration"),
                ReprojectionGuidance(self.weights.reprojection, name="reprojection"),
            ) if term.weight != 0]

    def _fallback_motion(self) -> Tensor:
        """(D,) raw motion used where the initial estimate fails: the training mean when it is a valid motion
        (a trained bundle), else a neutral one (upright, facing the camera, average shape, unit crop scale,
        which puts the person at the depth where its box fits it)."""
        mean = self.bundle.x_mean.detach()
        rot6d, _, cam = self.representation.split(mean)
        if torch.isfinite(sixd_to_matrix(rot6d)).all() and bool(cam[0] > 0):
            return mean
        rotmats = torch.eye(3, device=self.device).repeat(24, 1, 1)
        rotmats[0] = torch.diag(torch.tensor([1.0, -1.0, -1.0], device=self.device))  # body y-up -> camera y-down
        cam = torch.tensor([1.0, 0.0, 0.0], device=self.device)
        return self.representation.pack(rotmats, self.body.default_shape().to(self.device), cam)

    # -- networks for the method ------------------------------------------------------------------------------
    def _geometry_network(self) -> nn.Module:
        wanted = self.config.geometry_embedding
        if wanted == "stgcn":
            return self.bundle.geometry
        linear = getattr(self.bundle, "geometry_linear", None)
        if linear is None:
            raise MethodUnavailableError(
                f"method {self.config.name!r} needs a Geometry Optimizer with the Linear embedding, and this "
                f"bundle holds none (bundle.geometry_linear)")
        return linear.to(self.device).eval()

    def _denoiser(self) -> nn.Module:
        if self.config.denoiser == "two_branch":
            return self.bundle.infiller
        independent = getattr(self.bundle, "independent", None)
        if independent is not None:
            return independent
        log.warning("this bundle has no separately trained `independent` denoiser; using the two-branch "
                    "infiller with cross-attention cut instead (out of its training distribution)")
        return _CrossAttentionCut(self.bundle.infiller)

    @property
    def uses_text(self) -> bool:
        """Whether `estimate` reads the annotations' sentences (text_embeddings)."""
        return self.config.text and getattr(self.denoiser, "controlnet", None) is not None

    @property
    def uses_contacts(self) -> bool:
        """Whether `estimate` reads the annotations' contacts."""
        return self.weights.contact != 0

    # -- inputs -------------------------------------------------------------------------------------------------
    def _tensors(self, observation: PairObservation) -> _ObservationTensors:
        kp, bx, K = (_float_tensor(v, self.device)
                     for v in (observation.keypoints2d, observation.boxes, observation.intrinsics))
        world_joints, world_confidence = observation.world_joints, observation.world_confidence
        if kp.dim() != 4 or kp.shape[1:] != (2, 24, 3):
            raise ValueError(f"keypoints2d must be (T, 2, 24, 3), got {tuple(kp.shape)}")
        if bx.shape != (kp.shape[0], 2, 3):
            raise ValueError(f"boxes must be ({kp.shape[0]}, 2, 3), got {tuple(bx.shape)}")
        if K.shape != (3, 3) or not torch.isfinite(K).all():
            raise ValueError("K must be a finite (3, 3) intrinsics matrix")
        num_frames = kp.shape[0]
        if num_frames == 0:
            raise ValueError("no frames to estimate")
        # A keypoint with a non-finite value is a missed keypoint (confidence 0, position 0: F_img's rule).
        usable = torch.isfinite(kp).all(-1) & (kp[..., 2] > 0)
        kp = torch.where(usable[..., None], kp, torch.zeros_like(kp))
        mask = usable.any(-1)
        bx = _fill_missing_boxes(bx)
        world = world_conf = None
        if world_joints is not None:
            world = _float_tensor(world_joints, self.device)
            if world.shape != kp.shape:
                raise ValueError(f"world_joints must be ({num_frames}, 2, 24, 3), got {tuple(world.shape)}")
            known = torch.isfinite(world).all(-1)
            world_conf = (known.float() if world_confidence is None
                          else torch.nan_to_num(_float_tensor(world_confidence, self.device)))
            world_conf = torch.where(known, world_conf, torch.zeros_like(world_conf))
            world = torch.where(known[..., None], world, torch.zeros_like(world))
        if num_frames < self.window:  # pad: missing frames, the edge boxes repeated
            pad = self.window - num_frames
            kp = torch.cat([kp, kp.new_zeros(pad, *kp.shape[1:])])
            bx = torch.cat([bx, bx[-1:].expand(pad, -1, -1)])
            mask = torch.cat([mask, mask.new_zeros(pad, 2)])
            if world is not None:
                world = torch.cat([world, world.new_zeros(pad, *world.shape[1:])])
                world_conf = torch.cat([world_conf, world_conf.new_zeros(pad, *world_conf.shape[1:])])
        return _ObservationTensors(kp, bx, K, mask, num_frames, world, world_conf)

    def _window_conditions(self, starts: Sequence[int], num_frames: int,
                           annotations: Annotations | Sequence[ClipAnnotation] | None,
                           text_embeddings: Tensor | np.ndarray | None) -> _WindowConditions:
        clips = list(annotations.clips if isinstance(annotations, Annotations) else (annotations or []))
        L = self.window
        text_weight = torch.zeros(len(starts))
        text = None
        if self.uses_text and clips and text_embeddings is not None:
            embeddings = _float_tensor(text_embeddings, torch.device("cpu"))
            if embeddings.dim() != 3 or embeddings.shape[:2] != (len(clips), 2):
                raise ValueError(f"text_embeddings must be ({len(clips)}, 2, E) for {len(clips)} clips, got "
                                 f"{tuple(embeddings.shape)}")
            text = torch.zeros(len(starts), 2, embeddings.shape[-1])
            for w, start in enumerate(starts):
                overlaps = [min(start + L, c.end) - max(start, c.start) for c in clips]
                best = int(np.argmax(overlaps))
                if overlaps[best] > 0:
                    text[w] = embeddings[best]
                    text_weight[w] = float(clips[best].confidence) if self.config.text_confidence_weighting else 1.0
        contacts: list[list[tuple[int, int, int, float]]] = [[] for _ in starts]
        if self.weights.contact != 0:
            for frame, ja, jb, confidence in contact_rows(clips, num_frames):
                for w, start in enumerate(starts):
                    if start <= frame < start + L:
                        contacts[w].append((int(frame) - start, int(ja), int(jb), float(confidence)))
        return _WindowConditions(text, text_weight, contacts)

    def _start_noise(self, starts: Sequence[int], shape: tuple[int, ...]) -> Tensor:
        """Standard normal noise (W, 2, L, D), one seeded draw per window (see `MethodConfig.initial_noise`)."""
        draws = []
        for start in starts:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(start))
            if self.config.initial_noise == "shared":
                draws.append(torch.randn(1, *shape[1:], generator=generator).expand(*shape))
            elif self.config.initial_noise == "independent":
                draws.append(torch.randn(*shape, generator=generator))
            else:
                draws.append(torch.zeros(shape))
        return torch.stack(draws).to(self.device)

    # -- the pipeline -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def estimate(self, observation: PairObservation,
                 annotations: Annotations | Sequence[ClipAnnotation] | None = None,
                 text_embeddings: Tensor | np.ndarray | None = None, progress: bool = True) -> MotionEstimate:
        """The pair's 3D motion from ``observation``: its keypoints (confidence 0 = missing), boxes and
        intrinsics feed the networks, with MediaPipe's 3D where the bundle reads it; the fit also reads the
        image size (joints outside it are left to the priors), MediaPipe's 3D and the world's up (the shared
        floor; None: no floor term). annotations: the clips (text, contacts, confidence) in video frames, with
        text_embeddings (num_clips, 2, E) the sentence embeddings of their two sentences in the same order."""
        timer, warnings = _StageTimer(), []
        obs = self._tensors(observation)
        starts = window_starts(obs.padded_frames, self.window, self.config.stride)
        conditions = self._window_conditions(starts, obs.num_frames, annotations, text_embeddings)
        windows = self._estimate_windows(obs, starts, conditions, timer, warnings, progress)
        with timer("join"):
            joined = windows.joined(starts, obs.padded_frames)
        with timer("refiner"):
            final = self._refined(joined.sampled, obs, warnings)
        with timer("decode"):
            result = self._decode(self.bundle.denormalize(final), joined.x_init, obs, warnings)
        with timer("fit"):
            if self.config.fit.enabled:
                result = self._fit(result, observation, annotations, warnings)
        frames_first = (lambda seq: seq[:, :obs.num_frames].transpose(0, 1).contiguous().cpu().numpy())
        return MotionEstimate(
            rotmats=result["rotmats"], pose6d=result["pose6d"], shape=result["shape"],
            transl=result["transl"], joints=result["joints"], x=result["x"],
            initial_joints=frames_first(joined.initial_joints),
            geometry_joints=None if joined.geometry_joints is None else frames_first(joined.geometry_joints),
            timings=timer.finish(), method=self.config.name, warnings=warnings)

    def _estimate_windows(self, obs: _ObservationTensors, starts: list[int], conditions: _WindowConditions,
                          timer: "_StageTimer", warnings: list[str], progress: bool) -> "_WindowOutputs":
        """Step 2 of the module docstring on every window, ``batch_windows`` windows at a time."""
        L = self.window
        noise = self._start_noise(starts, (2, L, self.representation.dim))
        frame_index = torch.as_tensor(starts, device=self.device)[:, None] + torch.arange(L, device=self.device)
        out = _WindowOutputs()
        bar = _progress(len(starts), progress)
        for batch in _chunks(range(len(starts)), self.config.batch_windows):
            inputs = _window_inputs(obs, frame_index[batch])
            with timer("initial"):
                features = self.bundle.observation_features(inputs.keypoints2d, inputs.boxes, obs.K,
                                                            inputs.world_joints, inputs.world_confidence)
                x_init, initial_joints = self._initial(features, inputs, obs.K, warnings)
            with timer("geometry"):
                geometry_joints = self._geometry(initial_joints, features, inputs.mask, warnings)
            with timer("infiller"):
                x0 = self._sample(batch, x_init, geometry_joints, features, inputs.keypoints2d, inputs.boxes,
                                  inputs.mask, obs.K, conditions, noise[batch], warnings)
            out.append(x_init, initial_joints, geometry_joints, x0)
            bar.update(len(batch))
        bar.close()
        return out

    # -- stages -------------------------------------------------------------------------------------------------
    def _initial(self, features: Tensor, inputs: "_WindowInputs", K: Tensor, warnings: list[str]
                 ) -> tuple[Tensor, Tensor]:
        """The Initial Estimator's raw motion (B, 2, L, D) and its joints; the mean motion where either is not
        finite (e.g. a degenerate camera)."""
        x_init = self.bundle.initial(features, inputs.mask)
        mean_motion = self.fallback_motion.expand_as(x_init)
        x_init = _fallback("initial estimator", x_init, mean_motion, 1, warnings)
        initial_joints = motion_to_joints(x_init, inputs.boxes, K, self.body, self.representation)
        bad = _nonfinite_person_frames(initial_joints, 2)
        if bad.any():
            x_init = torch.where(bad[..., None], mean_motion, x_init)
            initial_joints = motion_to_joints(x_init, inputs.boxes, K, self.body, self.representation)
        return x_init, initial_joints

    def _geometry(self, initial_joints: Tensor, features: Tensor, mask: Tensor, warnings: list[str]
                  ) -> Tensor | None:
        """The Geometry Optimizer's joints (B, 2, L, 24, 3), when the method uses them."""
        if self.geometry_network is None:
            return None
        geometry_joints = self.geometry_network(initial_joints, features, mask)
        return _fallback("geometry optimizer", geometry_joints, initial_joints, 2, warnings)

    def _refined(self, sampled: Tensor, obs: _ObservationTensors, warnings: list[str]) -> Tensor:
        """The temporal refiner over the joined sequence (2, T_pad, D) normalised, when the method uses it."""
        if not self.config.refiner:
            return sampled
        return _fallback("temporal refiner", self._refine(sampled, obs.mask.T), sampled, 1, warnings)

    def _sample(self, batch: list[int], x_init: Tensor, geometry_joints: Tensor | None, features: Tensor,
                kp: Tensor, box: Tensor, mask: Tensor, K: Tensor,
                conditions: _WindowConditions, noise: Tensor, warnings: list[str]) -> Tensor:
        """DDIM sampling of one batch of windows with the method's guidance; returns normalised x0."""
        bundle = self.bundle
        x_init_n = bundle.normalize(x_init)
        first_step = self.sampler.timesteps()[0]
        abar = self.sampler.schedule.alphas_cumprod[first_step].to(x_init_n)
        x_T = x_init_n + (1.0 - abar).sqrt() * self.sampler.diffusion.sigma_like(x_init_n) * noise

        text, text_weight = None, None
        if conditions.text is not None and bool((conditions.text_weight[batch] > 0).any()):
            text = conditions.text[batch].to(self.device)
            text_weight = conditions.text_weight[batch].to(self.device)

        def denoise(x_t: Tensor, t: Tensor) -> Tensor:
            return self.denoiser(x_t, t, x_init_n, features, mask, text_embedding=text, text_weight=text_weight)

        extras: dict[str, Any] = {}
        if self.guidance_terms:
            # The guided FK keeps each person's shape fixed at the window's initial estimate.
            shape = self.representation.split(x_init)[1].mean(dim=2)  # (B, 2, S)
            rest = self.body.rest_joints(shape)
            extras = {
                "decoder": MotionDecoder(self.representation, rest, box, K, bundle.x_mean, bundle.x_std),
                "keypoints2d": kp, "frame_mask": mask.to(x_init.dtype),
                "contacts": ContactTargets.from_rows(
                    [(b, *row) for b, w in enumerate(batch) for row in conditions.contacts[w]]),
            }
            if geometry_joints is not None:
                extras["geometry_joints"] = geometry_joints
        x0 = self.sampler.sample(denoise, x_init_n, x_T=x_T, guidance=self.guidance_terms, extras=extras)
        return _fallback("motion infiller", x0, x_init_n, 1, warnings)

    def _fit(self, result: dict, observation: PairObservation, annotations, warnings: list[str]) -> dict:
        """The fit to the evidence over the whole sequence (`socialmirror.inference.fit`); the decoded motion
        stays where the fit fails (a warning says so)."""
        kp = np.asarray(observation.keypoints2d, dtype=np.float32)
        clips = annotations.clips if isinstance(annotations, Annotations) else list(annotations or [])
        evidence = FitEvidence(kp, np.asarray(observation.intrinsics, dtype=np.float32),
                               tuple(int(v) for v in observation.image_size), observation.world_joints,
                               observation.world_confidence, contact_rows(clips, kp.shape[0]), observation.up,
                               observation.statures)
        fitted, report = fit_to_evidence(self.body, result["rotmats"], result["transl"], result["shape"],
                                         evidence, self.config.fit)
        if not np.isfinite(fitted.joints).all():
            warnings.append("the fit to the evidence gave non-finite joints; kept the networks' motion")
            return result
        pose6d = matrix_to_6d(torch.as_tensor(fitted.rotmats)).numpy()
        return dict(result, rotmats=fitted.rotmats, pose6d=pose6d, transl=fitted.transl, joints=fitted.joints,
                    shape=fitted.shape)

    def _refine(self, motion: Tensor, mask: Tensor) -> Tensor:
        """The refiner over (2, T, D) in overlapping chunks (bounded memory), blended like the windows."""
        total = motion.shape[1]
        chunk, overlap = self.config.refine_chunk, self.config.refine_overlap
        starts = window_starts(total, chunk, chunk - overlap)
        if len(starts) == 1:
            return self.bundle.refiner(motion[None], mask[None])[0]
        pieces = [self.bundle.refiner(motion[None, :, s:s + chunk], mask[None, :, s:s + chunk])[0] for s in starts]
        return join_windows(pieces, starts, total, time_dim=-2)

    def _decode(self, x_raw: Tensor, x_init_raw: Tensor, obs: _ObservationTensors, warnings: list[str]
                ) -> dict[str, np.ndarray]:
        """(2, T_pad, D) raw motion -> the result's arrays for the first T frames, frames first."""
        T = obs.num_frames
        x = x_raw[:, :T].transpose(0, 1)  # (T, 2, D)
        fallback = x_init_raw[:, :T].transpose(0, 1)
        boxes, mask = obs.boxes[:T], obs.mask[:T]
        # One shape per person: the mean over the frames where it was observed (all frames if never).
        shape = pooled_shape(self.representation.split(x)[1].transpose(0, 1), mask.T)  # (2, S)
        if self.body.name == "anny":  # anny's phenotypes live in [0, 1] (the initial estimator's range)
            shape = shape.clamp(0.0, 1.0)
        rest = self.body.rest_joints(shape)  # (2, 24, 3), broadcast over the frames
        decoded = decode_motion(x, boxes, obs.K, self.representation, rest)
        bad = _nonfinite_person_frames(decoded.joints, 2) | _nonfinite_person_frames(x, 1)
        if bad.any():
            message = f"decoding: non-finite result on {int(bad.sum())} person-frame(s); using the initial estimate"
            log.warning(message)
            warnings.append(message)
            x = torch.where(bad[..., None], fallback, x)
            decoded = decode_motion(x, boxes, obs.K, self.representation, rest)
        numpy = (lambda t: t.detach().float().cpu().numpy())
        return {"rotmats": numpy(decoded.rotmats), "pose6d": numpy(matrix_to_6d(decoded.rotmats)),
                "shape": numpy(shape), "transl": numpy(decoded.transl), "joints": numpy(decoded.joints),
                "x": numpy(x)}


class _NoProgress:
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


def _progress(total: int, enabled: bool):
    if not enabled or total <= 1:
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the dependencies
        return _NoProgress()
    return tqdm(total=total, desc="3D windows", unit="window", leave=False)
