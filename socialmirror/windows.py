"""Windows over a sequence: the clip length L, where windows start, and how windows are joined back.

Every network of the method works on clips of L frames (paper Sec. 1.1). ``CLIP_LENGTH`` is L's one
definition: the default for new models, for the annotator's clips and for the evaluation protocol. A trained
model records the L it was trained with (``ModelBundleConfig.clip_len``), and whatever runs that model reads
L from there, never from this constant.

One rule places the windows everywhere (``window_starts``): starts ``stride`` apart from frame 0, and a last
window aligned to the end of the sequence when the stride does not land there (it then overlaps the window
before it), so no frame is left out and no window runs past the end. A sequence shorter than a window gets
one window at 0, which the caller pads (the estimator, the training clips) or shortens (``clip_ranges``).
The users differ only in the stride:

* training clips: every window (stride 1), so each frame is seen at every position of the clip;
* inference: windows ``stride`` (8) apart that overlap, joined by ``join_windows``;
* evaluation and annotation: non-overlapping windows (stride L); ``evaluation_windows`` marks in each window
  the frames no earlier window covered, so every frame is scored exactly once.

Joining: inside the overlap of two consecutive windows one fades out while the other fades in with
raised-cosine weights that sum to one, so there is no seam where one window hands over to the next, and
windows that agree are joined exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

CLIP_LENGTH = 16  # L: frames per clip


# ------------------------------------------------------------------------------------------------ starts
def window_starts(num_frames: int, length: int = CLIP_LENGTH, stride: int = 1) -> list[int]:
    """First frames of the windows of ``length`` frames over a sequence of ``num_frames``: every
    ``stride``-th frame, plus a last start ``num_frames - length`` when the stride skips it. A sequence no
    longer than a window has one window at 0."""
    if num_frames < 1:
        raise ValueError(f"a sequence needs at least one frame, got {num_frames}")
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got length={length} stride={stride}")
    if stride > length:
        raise ValueError(f"a stride ({stride}) larger than the window ({length}) leaves frames uncovered")
    if num_frames <= length:
        return [0]
    starts = list(range(0, num_frames - length + 1, stride))
    if starts[-1] != num_frames - length:
        starts.append(num_frames - length)
    return starts


def clip_ranges(num_frames: int, length: int = CLIP_LENGTH, stride: int | None = None) -> list[tuple[int, int]]:
    """``[start, end)`` clips over ``num_frames`` (the annotator's clips): windows ``stride`` (default
    ``length``) apart, all ``length`` long; a video shorter than ``length`` is one shorter clip, an empty
    one has none."""
    if length <= 0:
        raise ValueError(f"clip length must be positive, got {length}")
    n = int(num_frames)
    if n <= 0:
        return []
    if n <= length:
        return [(0, n)]
    return [(s, s + length) for s in window_starts(n, length, length if stride is None else int(stride))]


# ------------------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class Window:
    """One window of a sequence: frames ``start .. start + length - 1`` (clamped to the last frame).

    ``valid`` (length,) marks real frames (False for padding past the end of a short sequence); ``new``
    (length,) marks the frames this window is the first to cover (evaluation: score only these).
    """

    start: int
    length: int
    num_frames: int
    valid: np.ndarray
    new: np.ndarray

    @property
    def frames(self) -> np.ndarray:
        """(length,) frame indices into the sequence; padding repeats the last frame."""
        return np.minimum(self.start + np.arange(self.length), self.num_frames - 1)


def evaluation_windows(num_frames: int, length: int = CLIP_LENGTH) -> list[Window]:
    """Non-overlapping windows plus an end-aligned tail; the ``new`` masks cover every frame exactly once.
    Sequences shorter than ``length`` give one window padded by repeating the last frame."""
    windows = []
    covered_until = 0  # frames [0, covered_until) already belong to an earlier window
    for start in window_starts(num_frames, length, stride=length):
        frames = start + np.arange(length)
        valid = frames < num_frames
        new = valid & (frames >= covered_until)
        covered_until = int(min(num_frames, start + length))
        windows.append(Window(int(start), int(length), int(num_frames), valid, new))
    return windows


def training_windows(num_frames: int, length: int = CLIP_LENGTH, stride: int = 1) -> list[Window]:
    """Every training window (``new`` is all the window's valid frames)."""
    out = []
    for start in window_starts(num_frames, length, stride):
        valid = start + np.arange(length) < num_frames
        out.append(Window(int(start), int(length), int(num_frames), valid, valid.copy()))
    return out


# ------------------------------------------------------------------------------------------ split and join
def split_windows(sequence: Tensor, starts: Sequence[int], length: int, time_dim: int = -2) -> list[Tensor]:
    """The windows ``sequence[s : s + length]`` along ``time_dim``."""
    return [sequence.narrow(time_dim, s, length) for s in starts]


def _raised_cosine_ramp(length: int) -> Tensor:
    """Fade-in weights over ``length`` frames, strictly between 0 and 1; ramp[k] + ramp[length - 1 - k] = 1,
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
    """Blend windows placed at ``starts`` into one sequence of ``total_len`` frames along ``time_dim``.

    windows: a list of tensors (..., L_i, ...) or one stacked tensor (W, ..., L, ...) (then ``time_dim``
    refers to a single window's dims). Every frame must be covered by at least one window. Weights are
    normalised per frame, and accumulated in float64 so that identical windows give back the sequence bit
    for bit.
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
