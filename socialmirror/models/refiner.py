"""Temporal Motion Refiner (pipeline step 7): joins overlapping windows into one sequence and refines it.

`join_windows` blends overlapping windows (e.g. the infiller's 16-frame clips) with raised-cosine
cross-fades: inside the overlap of two consecutive windows one fades out while the other fades in, the two
weights summing to one, so there is no seam where one window hands over to the next, and windows that agree
are joined exactly.

`TemporalMotionRefiner` then works on the whole sequence (B, 2, T, D) of both persons:
    h = Linear(x) -> temporal conv block (residual) -> TwoBranchTransformer with local attention
        (each frame attends to frames within `attention_window` of it, in its own and the other person's
        branch: the interaction and contacts are refined together, at any sequence length)
    x' = x + Linear(h), with the output layer zero-initialised: an untrained refiner is the identity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from socialmirror.models.interaction_transformer import TransformerConfig, TwoBranchTransformer


# ---------------------------------------------------------------------------------------------- windows
def window_starts(total_len: int, window: int, stride: int) -> list[int]:
    """Starts of windows of `window` frames, `stride` apart, covering [0, total_len); the last window is
    aligned to the end of the sequence. A sequence shorter than a window gets one window at 0 (the caller
    pads it)."""
    if window <= 0 or stride <= 0:
        raise ValueError("window and stride must be positive")
    if stride > window:
        raise ValueError("stride larger than the window leaves frames uncovered")
    if total_len <= window:
        return [0]
    starts = list(range(0, total_len - window + 1, stride))
    if starts[-1] + window < total_len:
        starts.append(total_len - window)
    return starts


def split_windows(sequence: Tensor, starts: Sequence[int], window: int, time_dim: int = -2) -> list[Tensor]:
    """The windows sequence[s : s + window] along `time_dim`."""
    return [sequence.narrow(time_dim, s, window) for s in starts]


def _raised_cosine_ramp(length: int) -> Tensor:
    """Fade-in weights over `length` frames, strictly between 0 and 1; ramp[k] + ramp[length - 1 - k] = 1,
    so a fade-out (the reversed ramp) and a fade-in over the same frames sum to one."""
    k = torch.arange(1, length + 1, dtype=torch.float64)
    return 0.5 - 0.5 * torch.cos(math.pi * k / (length + 1))


def window_weights(starts: Sequence[int], lengths: Sequence[int]) -> list[Tensor]:
    """Blending weights (L_i,) of each window: 1, ramping up over its overlap with the window before it and
    down over its overlap with the window after it (windows ordered by start)."""
    order = sorted(range(len(starts)), key=lambda i: (starts[i], i))
    weights: list[Tensor] = [torch.empty(0)] * len(starts)
    for rank, i in enumerate(order):
        start, length = starts[i], lengths[i]
        w = torch.ones(length, dtype=torch.float64)
        if rank > 0:
            prev = order[rank - 1]
            overlap_in = min(max(starts[prev] + lengths[prev] - start, 0), length)
            if overlap_in:
                w[:overlap_in] *= _raised_cosine_ramp(overlap_in)
        if rank + 1 < len(order):
            nxt = order[rank + 1]
            overlap_out = min(max(start + length - starts[nxt], 0), length)
            if overlap_out:
                w[length - overlap_out:] *= _raised_cosine_ramp(overlap_out).flip(0)
        weights[i] = w
    return weights


def join_windows(windows: Sequence[Tensor] | Tensor, starts: Sequence[int], total_len: int,
                 time_dim: int = -2) -> Tensor:
    """Blend windows placed at `starts` into one sequence of `total_len` frames along `time_dim`.

    windows: a list of tensors (..., L_i, ...) or one stacked tensor (W, ..., L, ...) (then `time_dim` refers
    to a single window's dims). Every frame must be covered by at least one window. Weights are normalised per
    frame, and accumulated in float64 so that identical windows give back the sequence bit for bit.
    """
    windows = list(windows.unbind(0)) if isinstance(windows, Tensor) else list(windows)
    if len(windows) != len(starts):
        raise ValueError(f"{len(windows)} windows for {len(starts)} starts")
    if not windows:
        raise ValueError("no windows to join")
    ndim = windows[0].dim()
    axis = time_dim % ndim
    lengths = [w.shape[axis] for w in windows]
    shape = list(windows[0].shape)
    shape[axis] = total_len
    device, dtype = windows[0].device, windows[0].dtype
    total = torch.zeros(shape, dtype=torch.float64, device=device)
    weight_sum = torch.zeros(total_len, dtype=torch.float64, device=device)
    view = [1] * ndim
    for window, start, length, weight in zip(windows, starts, lengths, window_weights(starts, lengths)):
        if start < 0 or start + length > total_len:
            raise ValueError(f"window [{start}, {start + length}) outside the sequence of {total_len} frames")
        view[axis] = length
        weight = weight.to(device)
        total.narrow(axis, start, length).add_(window.to(torch.float64) * weight.view(view))
        weight_sum[start:start + length] += weight
    if (weight_sum <= 0).any():
        missing = torch.nonzero(weight_sum <= 0).flatten().tolist()
        raise ValueError(f"frames not covered by any window: {missing[:10]}{'...' if len(missing) > 10 else ''}")
    view[axis] = total_len
    return (total / weight_sum.view(view)).to(dtype)


# ---------------------------------------------------------------------------------------------- network
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
