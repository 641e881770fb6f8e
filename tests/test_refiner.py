"""Window joining (exact on consistent windows, no seam) and the Temporal Motion Refiner."""
from __future__ import annotations

import pytest
import torch

from socialmirror.models.refiner import (
    RefinerConfig,
    TemporalMotionRefiner,
    join_windows,
    split_windows,
    window_starts,
    window_weights,
)

D = 11


def test_window_starts_cover_the_sequence():
    assert window_starts(40, 16, 8) == [0, 8, 16, 24]
    assert window_starts(45, 16, 8) == [0, 8, 16, 24, 29]
    assert window_starts(10, 16, 8) == [0]
    with pytest.raises(ValueError):
        window_starts(40, 16, 20)


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


def test_refiner_is_identity_at_initialisation_and_trains():
    model = TemporalMotionRefiner(RefinerConfig(motion_dim=D, dim=32, depth=2, heads=4, attention_window=4))
    motion = torch.randn(2, 2, 37, D)
    assert torch.equal(model(motion), motion)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = (model(motion) - motion.roll(1, dims=2)).square().mean()
    loss.backward()
    optimiser.step()
    out = model(motion)
    assert out.shape == motion.shape and not torch.equal(out, motion)
    # person swap symmetry and the window helper
    with torch.no_grad():
        model.head.weight.normal_(std=0.1)
    assert torch.allclose(model(motion.flip(1)), model(motion).flip(1), atol=1e-6)
    starts = window_starts(37, 16, 8)
    refined = model.refine_windows(split_windows(motion, starts, 16), starts, 37)
    assert torch.allclose(refined, model(motion), atol=1e-6)
