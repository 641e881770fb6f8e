"""Temporal Motion Refiner (pipeline step 7): refines the joined sequence of overlapping windows.

The infiller's windows are joined first (`socialmirror.windows.join_windows`, raised-cosine cross-fades over
the overlaps); `TemporalMotionRefiner` then works on the whole sequence (B, 2, T, D) of both persons:
    h = Linear(x) -> temporal conv block (residual) -> TwoBranchTransformer with local attention
        (each frame attends to frames within `attention_window` of it, in its own and the other person's
        branch: the interaction and contacts are refined together, at any sequence length)
    x' = x + Linear(h), with the output layer zero-initialised: an untrained refiner is the identity.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from socialmirror.models.interaction_transformer import TransformerConfig, TwoBranchTransformer
from socialmirror.windows import join_windows


@dataclass
class RefinerConfig:
    motion_dim: int = 157
    dim: int = 96
    depth: int = 2
    heads: int = 4
    attention_window: int | None = 8  # frames on each side a frame attends to (None: the whole sequence)
    conv_kernel: int = 5
    cross_attention: bool = True
    feedforward: bool = True
    ff_mult: int = 2
    dropout: float = 0.0
    conditioning: Literal["add", "film"] = "add"

    def transformer_config(self) -> TransformerConfig:
        return TransformerConfig(
            dim=self.dim, depth=self.depth, heads=self.heads, cond_dim=None, conditioning=self.conditioning,
            cross_attention=self.cross_attention, feedforward=self.feedforward, ff_mult=self.ff_mult,
            dropout=self.dropout, position_encoding="sinusoidal", attention_window=self.attention_window)


class TemporalConvBlock(nn.Module):
    """h + Conv1x1(GELU(Conv_k(LN(h)))) over frames, per person; replicate padding avoids dips at the ends."""

    def __init__(self, dim: int, kernel: int):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError("conv_kernel must be odd")
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, padding_mode="replicate")
        self.mix = nn.Conv1d(dim, dim, 1)

    def forward(self, h: Tensor) -> Tensor:
        lead, (length, dim) = h.shape[:-2], h.shape[-2:]
        x = self.norm(h).reshape(-1, length, dim).transpose(1, 2)
        x = self.mix(torch.nn.functional.gelu(self.conv(x)))
        return h + x.transpose(1, 2).reshape(*lead, length, dim)


class TemporalMotionRefiner(nn.Module):
    def __init__(self, config: RefinerConfig | None = None):
        super().__init__()
        self.config = config = config or RefinerConfig()
        self.embed = nn.Linear(config.motion_dim, config.dim)
        self.temporal = TemporalConvBlock(config.dim, config.conv_kernel)
        self.transformer = TwoBranchTransformer(config.transformer_config())
        self.head = nn.Linear(config.dim, config.motion_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, motion: Tensor, mask: Tensor | None = None) -> Tensor:
        """motion (B, 2, T, D) joined sequence; mask (B, 2, T) bool (True = observed). Returns (B, 2, T, D)."""
        h = self.temporal(self.embed(motion))
        hidden = self.transformer(h, None, mask).hidden
        return motion + self.head(hidden)

    def refine_windows(self, windows: Sequence[Tensor] | Tensor, starts: Sequence[int], total_len: int,
                       mask: Tensor | None = None) -> Tensor:
        """Join windows (each (B, 2, L, D)) along time and refine the whole sequence."""
        return self(join_windows(windows, starts, total_len, time_dim=-2), mask)
