"""The Geometry Optimizer (the auxiliary model of supplementary Sec. 2.1): refines both persons' 3D joints.

Input: the initial estimate's joints of both persons (B, 2, L, 24, 3) in the camera frame (metres), F_img
(B, 2, L, img_dim) and the validity mask (B, 2, L). Output: refined joints (B, 2, L, 24, 3) in the camera
frame, which guide the infiller's sampling.

    centre  = mean pelvis of both persons over the clip's observed frames           (B, 3)
    tokens  = MotionEmbedding(joints - centre)    STGCN over the skeleton graph, or Linear (Table 2's ablation)
    c       = Linear(LN(F_img)) + Linear(centre) + e_missing on missed frames
    h       = TwoBranchTransformer(tokens + positions, c, mask)
    joints' = joints + Linear(h)                   a residual over the input joints

Why centre and residual: the embedding sees coordinates relative to the pair (a pose and the two persons'
relative placement do not depend on where the pair stands), while the absolute centre, which decides
perspective and depth, reaches the network as conditioning. Predicting a residual over the input joints with
a zero-initialised head makes an untrained optimizer the identity, and the network learns only the
correction, which is small next to the camera-frame coordinates (metres of depth).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor, nn

from socialmirror.body import skeleton
from socialmirror.models.interaction_transformer import (
    ConditionEncoder,
    TransformerConfig,
    TwoBranchTransformer,
)
from socialmirror.models.stgcn import LinearMotionEmbedding, STGCNConfig, STGCNMotionEmbedding


@dataclass
class GeometryOptimizerConfig:
    dim: int = 128
    depth: int = 4
    heads: int = 4
    img_dim: int | None = None
    embedding: Literal["stgcn", "linear"] = "stgcn"
    stgcn: STGCNConfig = field(default_factory=STGCNConfig)  # its `dim` is replaced by `dim`
    conditioning: Literal["add", "film"] = "add"
    cross_attention: bool = True
    feedforward: bool = True
    ff_mult: int = 2
    dropout: float = 0.0
    position_encoding: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_len: int = 64

    def transformer_config(self) -> TransformerConfig:
        return TransformerConfig(
            dim=self.dim, depth=self.depth, heads=self.heads, cond_dim=self.dim,
            conditioning=self.conditioning, cross_attention=self.cross_attention,
            feedforward=self.feedforward, ff_mult=self.ff_mult, dropout=self.dropout,
            position_encoding=self.position_encoding, max_len=self.max_len)


def pair_centre(joints: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean pelvis of both persons over the observed frames: joints (B, 2, L, J, 3) -> (B, 3).
    A clip with no observed frame falls back to the mean over all frames."""
    pelvis = joints[..., skeleton.JOINT_INDEX["pelvis"], :]  # (B, 2, L, 3)
    plain = pelvis.mean(dim=(1, 2))
    if mask is None:
        return plain
    weight = mask.to(joints.dtype)[..., None]
    count = weight.sum(dim=(1, 2))
    masked = (pelvis * weight).sum(dim=(1, 2)) / count.clamp_min(1.0)
    return torch.where(count > 0, masked, plain)


class GeometryOptimizer(nn.Module):
    def __init__(self, config: GeometryOptimizerConfig | None = None):
        super().__init__()
        self.config = config = config or GeometryOptimizerConfig()
        if config.embedding == "stgcn":
            self.embedding: nn.Module = STGCNMotionEmbedding(replace(config.stgcn, dim=config.dim))
        elif config.embedding == "linear":
            self.embedding = LinearMotionEmbedding(config.dim)
        else:
            raise ValueError(f"unknown embedding {config.embedding!r}")
        self.condition = ConditionEncoder(config.dim, config.img_dim, timestep=False)
        self.centre_embed = nn.Linear(3, config.dim)
        self.transformer = TwoBranchTransformer(config.transformer_config())
        self.head = nn.Linear(config.dim, skeleton.NUM_JOINTS * 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, joints: Tensor, img_features: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """joints (B, 2, L, 24, 3) camera frame; img_features (B, 2, L, img_dim); mask (B, 2, L) bool.
        Returns the refined joints (B, 2, L, 24, 3) in the camera frame."""
        batch, persons, length, num_joints, _ = joints.shape
        centre = pair_centre(joints, mask)  # (B, 3)
        tokens = self.embedding(joints - centre[:, None, None, None, :])
        cond = self.centre_embed(centre)[:, None, None, :]
        frame_cond = self.condition(batch, length, img_features=img_features, mask=mask)
        if frame_cond is not None:
            cond = cond + frame_cond
        hidden = self.transformer(tokens, cond, mask).hidden
        return joints + self.head(hidden).view(batch, persons, length, num_joints, 3)
