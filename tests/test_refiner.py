"""The Temporal Motion Refiner: identity at initialisation, trainable, symmetric, joins windows."""
from __future__ import annotations

import torch

from socialmirror.models.refiner import RefinerConfig, TemporalMotionRefiner
from socialmirror.windows import split_windows, window_starts

D = 11


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
