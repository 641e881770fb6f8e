"""Windows: where they start (training, inference, evaluation, annotation), the evaluation tail, and joining
overlapping windows (exact on consistent windows, no seam)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from socialmirror.windows import (CLIP_LENGTH, clip_ranges, evaluation_windows, join_windows, split_windows,
                                  training_windows, window_starts, window_weights)

D = 11


def test_window_starts_reach_the_end_with_any_stride():
    assert window_starts(20, 16, 1) == [0, 1, 2, 3, 4]
    assert window_starts(20, 16, 3) == [0, 3, 4]  # the end is always reached
    assert window_starts(40, 16, 8) == [0, 8, 16, 24]
    assert window_starts(45, 16, 8) == [0, 8, 16, 24, 29]
    assert window_starts(10, 16, 8) == [0] and window_starts(5) == [0]
    assert len(training_windows(100, 16)) == 85
    with pytest.raises(ValueError):
        window_starts(0, 16)
    with pytest.raises(ValueError, match="uncovered"):
        window_starts(40, 16, 20)


@pytest.mark.parametrize("frames", [1, 10, 16, 17, 31, 32, 33, 100])
def test_evaluation_windows_cover_every_frame_exactly_once(frames):
    windows = evaluation_windows(frames)
    count = np.zeros(frames, dtype=int)
    for w in windows:
        assert w.frames.shape == (CLIP_LENGTH,) and w.frames.max() < frames
        count[w.frames[w.new]] += 1
        assert not (w.new & ~w.valid).any()
    assert (count == 1).all()
    starts = [w.start for w in windows]
    # Non-overlapping except the end-aligned tail.
    if frames > CLIP_LENGTH:
        assert (np.diff(starts)[:-1] == CLIP_LENGTH).all() and starts[-1] == frames - CLIP_LENGTH


def test_tail_window_overlaps_and_marks_new_frames():
    windows = evaluation_windows(40, 16)
    assert [w.start for w in windows] == [0, 16, 24]
    assert windows[-1].new.tolist() == [False] * 8 + [True] * 8
    (short,) = evaluation_windows(10, 16)
    assert short.valid.tolist() == [True] * 10 + [False] * 6
    assert short.frames.tolist() == list(range(10)) + [9] * 6


def test_clip_ranges_are_the_same_windows_as_ranges():
    assert clip_ranges(0) == []
    assert clip_ranges(10) == [(0, 10)]
    assert clip_ranges(16) == [(0, 16)]
    assert clip_ranges(40) == [(0, 16), (16, 32), (24, 40)]
    assert clip_ranges(40, stride=8) == [(0, 16), (8, 24), (16, 32), (24, 40)]
    assert [s for s, _ in clip_ranges(100)] == [w.start for w in evaluation_windows(100)]


@pytest.mark.parametrize("total, window, stride", [(45, 16, 8), (64, 16, 4), (33, 16, 15), (16, 16, 8)])
def test_joining_consistent_windows_is_exact(total, window, stride):
    sequence = torch.randn(2, 2, total, D)
    starts = window_starts(total, window, stride)
    windows = split_windows(sequence, starts, window)
    assert torch.equal(join_windows(windows, starts, total), sequence)
    # a stacked tensor of windows works as well, and so does another time axis
    assert torch.equal(join_windows(torch.stack(windows), starts, total), sequence)
    moved = sequence.transpose(1, 2)  # (2, T, 2, D): time on dim 1
    parts = split_windows(moved, starts, window, time_dim=1)
    assert torch.equal(join_windows(parts, starts, total, time_dim=1), moved)


def test_weights_cross_fade_to_one():
    starts, lengths = [0, 8, 16], [16, 16, 16]
    weights = window_weights(starts, lengths)
    total = torch.zeros(32, dtype=torch.float64)
    for s, w in zip(starts, weights):
        assert (w > 0).all() and (w <= 1).all()
        total[s:s + 16] += w
    assert torch.allclose(total, torch.ones(32, dtype=torch.float64))


def test_joining_has_no_seam():
    """Windows that disagree by a constant offset are blended gradually, not cut."""
    total, window, stride = 40, 16, 8
    time = torch.linspace(0, 1, total)
    sequence = torch.sin(3 * time)[None, None, :, None].expand(1, 2, total, D).contiguous()
    starts = window_starts(total, window, stride)
    offsets = [0.0, 1.0, -1.0, 0.5]
    windows = [w + o for w, o in zip(split_windows(sequence, starts, window), offsets)]
    joined = join_windows(windows, starts, total)
    error = (joined - sequence)[0, 0, :, 0]
    largest_jump = max(abs(a - b) for a, b in zip(offsets[:-1], offsets[1:]))
    assert (error[1:] - error[:-1]).abs().max() < 0.2 * largest_jump
    # frames covered by one window keep that window's values
    assert torch.allclose(joined[..., :8, :], windows[0][..., :8, :])
    with pytest.raises(ValueError):
        join_windows(windows[:1], starts[:1], total)  # uncovered frames
