"""The initial estimator (pipeline step 4): per-person body-model parameters from the observation alone.

This is the role HMR2.0 plays in CloseInt: a single-person front end whose output x_init is the centre of the
infiller's initial distribution (supplementary Eq. 2). Per person, per frame it maps F_img
(``socialmirror.models.features``) to the motion representation of ``socialmirror.body.motion``:

    x_init = [24 rotations in 6D (global orientation in the CAMERA frame), shape, crop camera (s, tx, ty)]

Network: tokens = Linear(LN(F_img)) + e_missing on frames where the person was not detected, then a small
temporal transformer over the clip (the two-branch transformer with cross-attention switched off: each
person is processed alone with shared weights, so this stays the single-person front end and cannot see the
partner), and a linear head.

The head predicts an unconstrained "raw" vector that maps onto valid parameters:
    rotations: any 6D vector, re-orthonormalised (Gram-Schmidt) so x_init holds proper rotations;
    shape:     logits, through a sigmoid, so anny's phenotypes stay in [0, 1];
    camera:    log s (the scale is positive), tx, ty.
The raw output is de-standardised with per-dimension statistics of the training targets
(``set_output_statistics``), and the head starts at zero, so an untrained estimator predicts the mean
target (e.g. a person upright in front of the camera) instead of arbitrary rotations.

With ``members`` > 1 the bundle holds an ``InitialEnsemble``: that many estimators trained side by side, each on
its own loss, whose raw outputs are averaged. Under a time budget (``train --minutes``) they share the stage's
time, so each takes fewer steps than one estimator would; ``--steps`` gives each the full count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from socialmirror.body.motion import MotionRepresentation
from socialmirror.geometry.rotations import matrix_to_6d, sixd_to_matrix
from socialmirror.models.features import IMG_FEATURE_DIM
from socialmirror.models.interaction_transformer import TransformerConfig, TwoBranchTransformer

# Phenotypes are kept this far inside (0, 1) before taking logits, so targets at the bounds stay finite.
SHAPE_LOGIT_EPS = 1e-3


@dataclass
class InitialEstimatorConfig:
    shape_dim: int = 6  # anny's phenotypes
    img_dim: int = IMG_FEATURE_DIM
    dim: int = 128
    depth: int = 3
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.0
    position_encoding: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_len: int = 64
    # Estimators trained side by side from different random starts, their raw outputs averaged
    # (``InitialEnsemble``); 1: a single estimator, as bundles stored before the field existed.
    members: int = 1

    def __post_init__(self):
        if self.members < 1:
            raise ValueError(f"initial.members must be at least 1, got {self.members}")

    def transformer_config(self) -> TransformerConfig:
        return TransformerConfig(dim=self.dim, depth=self.depth, heads=self.heads, cond_dim=None,
                                 cross_attention=False, feedforward=True, ff_mult=self.ff_mult,
                                 dropout=self.dropout, position_encoding=self.position_encoding,
                                 max_len=self.max_len)


def motion_to_raw(x: Tensor, representation: MotionRepresentation) -> Tensor:
    """x (..., D) -> the unconstrained raw parameterisation (6D, shape logits, log s, tx, ty)."""
    rot6d, shape, cam = representation.split(x)
    shape = shape.clamp(SHAPE_LOGIT_EPS, 1.0 - SHAPE_LOGIT_EPS)
    log_scale = cam[..., :1].clamp_min(1e-6).log()
    return torch.cat([rot6d.flatten(-2), torch.logit(shape), log_scale, cam[..., 1:]], -1)


def raw_to_motion(raw: Tensor, representation: MotionRepresentation) -> Tensor:
    """Inverse of ``motion_to_raw``; any raw vector gives valid rotations, shape in [0, 1] and s > 0."""
    rot6d, shape_logits, cam = representation.split(raw)
    rot6d = matrix_to_6d(sixd_to_matrix(rot6d)).flatten(-2)
    cam = torch.cat([cam[..., :1].exp(), cam[..., 1:]], -1)
    return torch.cat([rot6d, torch.sigmoid(shape_logits), cam], -1)


class InitialEstimator(nn.Module):
    def __init__(self, config: InitialEstimatorConfig | None = None):
        super().__init__()
        self.config = config = config or InitialEstimatorConfig()
        self.representation = MotionRepresentation(config.shape_dim)
        motion_dim = self.representation.dim
        self.embed = nn.Sequential(nn.LayerNorm(config.img_dim), nn.Linear(config.img_dim, config.dim))
        self.missing = nn.Parameter(torch.randn(config.dim) * 0.02)
        self.transformer = TwoBranchTransformer(config.transformer_config())
        self.head = nn.Linear(config.dim, motion_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # De-standardisation of the raw output; identity until the training data's statistics are set.
        self.register_buffer("raw_mean", torch.zeros(motion_dim))
        self.register_buffer("raw_std", torch.ones(motion_dim))

    @property
    def motion_dim(self) -> int:
        return self.representation.dim

    @torch.no_grad()
    def set_output_statistics(self, x: Tensor) -> None:
        """Per-dimension mean and spread of the raw targets, from target motions x (N, D)."""
        raw = motion_to_raw(x.reshape(-1, self.motion_dim).float(), self.representation)
        self.raw_mean.copy_(raw.mean(0))
        self.raw_std.copy_(raw.std(0).clamp_min(1e-3))

    def forward_raw(self, img_features: Tensor, mask: Tensor | None = None) -> Tensor:
        """img_features (B, 2, L, img_dim), mask (B, 2, L) True where detected -> raw (B, 2, L, D)."""
        tokens = self.embed(img_features)
        if mask is not None:
            tokens = tokens + (~mask.bool()).to(tokens.dtype)[..., None] * self.missing
        hidden = self.transformer(tokens, None, mask).hidden
        return self.raw_mean + self.raw_std * self.head(hidden)

    def forward(self, img_features: Tensor, mask: Tensor | None = None) -> Tensor:
        """img_features (B, 2, L, img_dim), mask (B, 2, L) -> x_init (B, 2, L, D) in the camera frame."""
        return raw_to_motion(self.forward_raw(img_features, mask), self.representation)


class InitialEnsemble(nn.Module):
    """``config.members`` initial estimators, each trained on its own loss from its own random start; the
    estimate is the mean of their raw outputs (rotations averaged as 6D vectors before Gram-Schmidt, shape as
    logits, the crop camera's scale as a log).

    Why: each person's size and distance, which every later stage starts from, come from here, and estimators of
    one recipe trained from two random starts disagree on them; the mean of independently trained estimators
    varies less from run to run than either (a deep ensemble; README, "Training and the shipped weights": two
    runs' bundles 49 mm apart in R-MPJPE on average over four data sets, 24 with one ensemble in both)."""

    def __init__(self, config: InitialEstimatorConfig, members: Sequence[InitialEstimator] | None = None):
        super().__init__()
        if members is not None and len(members) != config.members:
            raise ValueError(f"an ensemble of {config.members} initial estimators given {len(members)}")
        self.config = config
        self.representation = MotionRepresentation(config.shape_dim)
        self.members = nn.ModuleList(members if members is not None
                                     else [InitialEstimator(config) for _ in range(config.members)])

    @property
    def motion_dim(self) -> int:
        return self.representation.dim

    @torch.no_grad()
    def set_output_statistics(self, x: Tensor) -> None:
        for member in self.members:
            member.set_output_statistics(x)

    def forward_raw(self, img_features: Tensor, mask: Tensor | None = None) -> Tensor:
        return torch.stack([m.forward_raw(img_features, mask) for m in self.members]).mean(0)

    def forward(self, img_features: Tensor, mask: Tensor | None = None) -> Tensor:
        return raw_to_motion(self.forward_raw(img_features, mask), self.representation)


def build_initial_estimator(config: InitialEstimatorConfig) -> InitialEstimator | InitialEnsemble:
    """The bundle's initial estimator: one network, or an ensemble of ``config.members``."""
    return InitialEstimator(config) if config.members == 1 else InitialEnsemble(config)


def estimators(initial: InitialEstimator | InitialEnsemble) -> list[InitialEstimator]:
    """The networks that are trained, each on its own loss: the members of an ensemble, or the one."""
    return list(initial.members) if isinstance(initial, InitialEnsemble) else [initial]


__all__ = ["InitialEnsemble", "InitialEstimator", "InitialEstimatorConfig", "build_initial_estimator", "estimators",
           "motion_to_raw", "raw_to_motion"]
