"""The training stages and their losses (docs/architecture.md, "Data and training"; supplementary
Sec. 1.1-1.2).

Each stage is an ``nn.Module`` whose ``forward(batch)`` returns a dict of named loss terms and their
weighted sum ``"loss"``; the trainer wraps it in DDP and steps the stage's ``trainable_parameters()``. The
stage modules hold the bundle's networks as submodules (the trained one and any frozen one feeding it); the
body model is kept OUT of the module tree (it is fixed: nothing to train, synchronise or save).

Stages (in training order):
  ``initial``      InitialEstimator (each member of an ensemble on its own loss): 6D rotation L2 + camera-frame
                   joint errors (FK; pose relative to the pelvis and pelvis placement, see
                   ``Stage.joint_terms``) + 2D reprojection error (in box sides, weighted by the keypoints'
                   confidences) + shape L2 + crop-camera L2 (log s, tx, ty).
  ``geometry``     GeometryOptimizer (batch 64): input the frozen initial estimator's joints (or, before that
                   stage exists, the target joints with noise), output camera-frame joints, loss = mean joint
                   error on the joints the ground truth has (``joint_mask``).
  ``geometry_linear``  the same for the bundle's ``geometry_linear`` network, the Geometry Optimizer with the
                   Linear motion embedding (Table 2's ablation): same data, inputs, loss and batch size.
  ``infiller``     base MotionDenoiser, phase 1 (batch 32): diffusion with initial distributions. x_init from the
                   frozen initial estimator, t ~ U[0, T), x_t = q_sample(x0, x_init, t) (Eq. 2) in normalised
                   x, the network predicts x0; loss = L2 in normalised x + camera-frame joint errors.
  ``independent``  the same for the ``independent`` baseline's denoiser (no cross-attention, no text).
  ``text``         phase 2: the ControlNet and the text projection with the base frozen; MiniLM embeddings of
                   the two sentences (person order follows the persons, swaps included); clips without text
                   get text weight 0 (the base model's prediction, which is frozen, so they add no gradient).
  ``refiner``      TemporalMotionRefiner: its input is what it sees at run time, the infiller's samples (DDIM,
                   the bundle's 5 steps, no text, no guidance) on two overlapping 12-frame windows of the clip
                   joined with ``join_windows``; loss = L2 in normalised x + joint errors + joint acceleration
                   error (so the refiner cannot trade smoothness for accuracy or the reverse) + optionally
                   (``relative``) the error of the pelvis-to-pelvis vector (the two people's relative
                   placement, which the evaluation scores as R-MPJPE and Int).
Every term is averaged over the real (not padded) frames of the persons observed in the clip.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn

from socialmirror.body.base import BodyModel
from socialmirror.body.motion import motion_to_joints
from socialmirror.geometry.camera import broadcast_intrinsics, project
from socialmirror.models.bundle import ModelBundle
from socialmirror.models.infiller import SemanticMotionInfiller
from socialmirror.models.initial_estimator import estimators
from socialmirror.windows import join_windows

# Refiner inputs: two windows of this many frames, overlapping, that cover the training clip.
REFINER_WINDOW = 12


@dataclass
class LossWeights:
    rotation: float = 1.0  # 6D L2 (initial)
    joints: float = 2.0  # mean joint distance relative to the pelvis, metres
    translation: float = 0.5  # pelvis distance in the camera frame, metres
    reprojection: float = 1.0  # 2D distance in units of the box side, confidence-weighted
    shape: float = 1.0  # shape L2
    camera: float = 1.0  # (log s, tx, ty) L2
    motion: float = 1.0  # L2 in normalised x (infiller, refiner)
    acceleration: float = 10.0  # joint acceleration error (refiner), metres / frame^2
    # Error of the pelvis-to-pelvis vector (refiner), metres: what R-MPJPE and Int score. Off by default: 400 more
    # refiner steps with it (1.0) scored better on validation but worse on held-out data than without (README).
    relative: float = 0.0


def masked_mean(values: Tensor, weight: Tensor) -> Tensor:
    """Mean of ``values`` (B, 2, L, ...) over the entries where ``weight`` (B, 2, L) is non-zero."""
    while weight.dim() < values.dim():
        weight = weight[..., None]
    weight = weight.expand_as(values).to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def batch_features(bundle: ModelBundle, batch: dict[str, Any]) -> Tensor:
    """F_img of a training batch (MediaPipe's 3D included where the bundle reads it)."""
    return bundle.observation_features(batch["keypoints2d"], batch["boxes"], batch["intrinsics"],
                                       batch.get("world_joints"), batch.get("world_confidence"))


def frame_weight(batch: dict[str, Any]) -> Tensor:
    """(B, 2, L): real frames of persons observed somewhere in the clip."""
    return (batch["valid"] & batch["person_observed"][..., None]).float()


class Stage(nn.Module):
    name: str = ""

    def __init__(self, bundle: ModelBundle, body: BodyModel, weights: LossWeights):
        super().__init__()
        self.representation = bundle.representation
        self.weights = weights
        # Neither is a submodule: the body model is fixed, and of the bundle only the networks a stage
        # registers itself take part (normalisation and sigma are read from it).
        self.__dict__["body"] = body
        self.__dict__["bundle"] = bundle
        self.frozen: list[nn.Module] = []

    def freeze(self, module: nn.Module) -> nn.Module:
        """A network that feeds the trained one: no gradients, always in eval mode."""
        module.requires_grad_(False).eval()
        self.frozen.append(module)
        return module

    def train(self, mode: bool = True) -> "Stage":
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    def features(self, batch: dict[str, Any]) -> Tensor:
        return batch_features(self.bundle, batch)

    def joints_of(self, x: Tensor, batch: dict[str, Any]) -> Tensor:
        """Camera-frame joints of raw (not normalised) motions x (B, 2, L, D)."""
        return motion_to_joints(x, batch["boxes_target"], batch["intrinsics"], self.body, self.representation)

    def joint_terms(self, joints: Tensor, batch: dict[str, Any], weight: Tensor) -> dict[str, Tensor]:
        """Camera-frame joint errors (metres), split in two: the pose (joints relative to the pelvis) and the
        placement (the pelvis itself). Depth is the least observable quantity in a monocular view and its
        error (tens of centimetres) would otherwise drown the pose error (a few centimetres)."""
        target = batch["joints_target"]
        pelvis, pelvis0 = joints[..., :1, :], target[..., :1, :]
        pose = ((joints - pelvis) - (target - pelvis0)).norm(dim=-1).mean(-1)
        return {"joints": masked_mean(pose, weight),
                "translation": masked_mean((pelvis - pelvis0).norm(dim=-1)[..., 0], weight)}

    @staticmethod
    def relative_term(joints: Tensor, batch: dict[str, Any], weight: Tensor) -> Tensor:
        """Error of the pelvis-to-pelvis vector (person 2's pelvis from person 1's; metres), on the frames where
        both people count: the two people's placement relative to each other, whatever their common offset."""
        target = batch["joints_target"]
        vector = joints[:, 1, :, 0] - joints[:, 0, :, 0]
        vector0 = target[:, 1, :, 0] - target[:, 0, :, 0]
        both = weight[:, 0] * weight[:, 1]
        return masked_mean((vector - vector0).norm(dim=-1), both)

    def total(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        terms["loss"] = sum(getattr(self.weights, k) * v for k, v in terms.items())
        return terms


class InitialStage(Stage):
    name = "initial"

    def __init__(self, bundle: ModelBundle, body: BodyModel, weights: LossWeights):
        super().__init__(bundle, body, weights)
        self.initial = bundle.initial

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        # An ensemble's members each learn on their own loss: a loss on their mean would train one larger
        # network, not independent estimates whose errors average out.
        features = self.features(batch)
        terms = [self.losses(member(features, batch["detected"]), batch) for member in estimators(self.initial)]
        return {name: torch.stack([t[name] for t in terms]).mean() for name in terms[0]}

    def losses(self, x: Tensor, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The loss terms of an estimate x (B, 2, L, D) against the batch's targets and keypoints."""
        weight = frame_weight(batch)
        rot, shape, cam = self.representation.split(x)
        rot0, shape0, cam0 = self.representation.split(batch["x0"])
        joints = self.joints_of(x, batch)
        # Reprojection: distance in units of the box side (scale-free), on the given keypoints only.
        uv = project(joints, broadcast_intrinsics(batch["intrinsics"], 3))
        keypoints = batch["keypoints2d"]
        side = batch["boxes_target"][..., 2:3].clamp_min(1.0)[..., None]
        conf = keypoints[..., 2] * batch["detected"][..., None] * weight[..., None]
        reprojection = ((uv - keypoints[..., :2]) / side).norm(dim=-1)
        log_cam = torch.cat([cam[..., :1].log(), cam[..., 1:]], -1)
        log_cam0 = torch.cat([cam0[..., :1].log(), cam0[..., 1:]], -1)
        return self.total({
            "rotation": masked_mean(((rot - rot0) ** 2).sum(-1).mean(-1), weight),
            **self.joint_terms(joints, batch, weight),
            "reprojection": (reprojection * conf).sum() / conf.sum().clamp_min(1.0),
            "shape": masked_mean(((shape - shape0) ** 2).sum(-1), weight),
            "camera": masked_mean(((log_cam - log_cam0) ** 2).sum(-1), weight),
        })


class GeometryStage(Stage):
    """``geometry`` trains ``bundle.geometry``; ``geometry_linear`` (``network=bundle.geometry_linear``) the
    Linear-embedding ablation, in exactly the same way."""

    def __init__(self, bundle: ModelBundle, body: BodyModel, weights: LossWeights, use_initial: bool,
                 input_noise: float = 0.05, network: nn.Module | None = None, name: str = "geometry"):
        super().__init__(bundle, body, weights)
        self.name = name
        self.geometry = bundle.geometry if network is None else network
        self.initial = self.freeze(bundle.initial) if use_initial else None
        self.input_noise = input_noise

    def input_joints(self, batch: dict[str, Any], features: Tensor) -> Tensor:
        with torch.no_grad():
            if self.initial is not None:
                return self.joints_of(self.initial(features, batch["detected"]), batch)
            # No trained initial estimator yet: the targets with per-joint noise and a per-person offset.
            target = batch["joints_target"]
            noise = torch.randn_like(target) + torch.randn_like(target[..., :1, :]) * 2.0
            return target + self.input_noise * noise

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        features = self.features(batch)
        joints = self.geometry(self.input_joints(batch, features), features, batch["detected"])
        weight = frame_weight(batch)[..., None] * batch["joint_mask"][:, None, None, :].float()
        error = (joints - batch["joints_cam"]).norm(dim=-1)
        return self.total({"joints": masked_mean(error, weight)})


class DiffusionStage(Stage):
    """Phase 1 (``infiller``, ``independent``) and phase 2 (``text``) of the motion infiller."""

    def __init__(self, bundle: ModelBundle, body: BodyModel, weights: LossWeights, network: SemanticMotionInfiller,
                 name: str, text_encoder: Callable[[list[str]], Tensor] | None = None):
        super().__init__(bundle, body, weights)
        self.name = name
        self.network = network
        self.initial = self.freeze(bundle.initial)
        self.text_encoder = text_encoder
        self.diffusion = bundle.diffusion()

    def text_inputs(self, batch: dict[str, Any]) -> tuple[Tensor | None, Tensor | None]:
        if self.text_encoder is None:
            return None, None
        first, second = (list(s) for s in batch["text"])  # default collation: one tuple per person
        embedding = self.text_encoder(first + second).view(2, len(first), -1).transpose(0, 1)
        return embedding, batch["has_text"].float()

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        bundle = self.bundle
        features = self.features(batch)
        weight = frame_weight(batch)
        with torch.no_grad():
            x_init = bundle.normalize(self.initial(features, batch["detected"]))
        x0 = bundle.normalize(batch["x0"])
        t = self.diffusion.sample_timesteps(x0.shape[0], device=x0.device)
        x_t = self.diffusion.q_sample(x0, x_init, t)
        text, text_weight = self.text_inputs(batch)
        pred = self.network(x_t, t, x_init, features, batch["detected"], text_embedding=text,
                            text_weight=text_weight)
        joints = self.joints_of(bundle.denormalize(pred), batch)
        return self.total({"motion": masked_mean(((pred - x0) ** 2).mean(-1), weight),
                           **self.joint_terms(joints, batch, weight)})


class RefinerStage(Stage):
    name = "refiner"

    def __init__(self, bundle: ModelBundle, body: BodyModel, weights: LossWeights):
        super().__init__(bundle, body, weights)
        self.refiner = bundle.refiner
        self.initial = self.freeze(bundle.initial)
        self.infiller = self.freeze(bundle.infiller)
        self.__dict__["sampler"] = bundle.sampler()

    @torch.no_grad()
    def joined_infiller_samples(self, batch: dict[str, Any], features: Tensor) -> Tensor:
        """The infiller's samples on two overlapping windows of the clip, joined (normalised x)."""
        bundle, length = self.bundle, features.shape[2]
        x_init = bundle.normalize(self.initial(features, batch["detected"]))
        starts = [0, length - REFINER_WINDOW]
        windows = []
        for s in starts:
            part = slice(s, s + REFINER_WINDOW)
            x_init_w, feat_w, mask_w = x_init[:, :, part], features[:, :, part], batch["detected"][:, :, part]
            windows.append(self.sampler.sample(
                lambda x_t, t: self.infiller(x_t, t, x_init_w, feat_w, mask_w), x_init_w))
        return join_windows(windows, starts, length, time_dim=2)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        bundle = self.bundle
        features = self.features(batch)
        weight = frame_weight(batch)
        refined = self.refiner(self.joined_infiller_samples(batch, features), batch["detected"])
        x0 = bundle.normalize(batch["x0"])
        joints = self.joints_of(bundle.denormalize(refined), batch)
        target = batch["joints_target"]
        accel = joints[:, :, 2:] - 2 * joints[:, :, 1:-1] + joints[:, :, :-2]
        accel0 = target[:, :, 2:] - 2 * target[:, :, 1:-1] + target[:, :, :-2]
        accel_weight = weight[:, :, 2:] * weight[:, :, 1:-1] * weight[:, :, :-2]
        return self.total({
            "motion": masked_mean(((refined - x0) ** 2).mean(-1), weight),
            **self.joint_terms(joints, batch, weight),
            "acceleration": masked_mean((accel - accel0).norm(dim=-1).mean(-1), accel_weight),
            "relative": self.relative_term(joints, batch, weight),
        })
