"""Robust penalties: bounded pulls for evidence that may be wrong (an annotated contact, a detection)."""
from __future__ import annotations

import torch


def huber(error: torch.Tensor, delta: float) -> torch.Tensor:
    """0.5 e^2 up to `delta`, then linear with slope `delta`: the pull never exceeds `delta`."""
    return torch.where(error <= delta, 0.5 * error.square(), delta * (error - 0.5 * delta))


def geman_mcclure(sq_error: torch.Tensor, scale: float) -> torch.Tensor:
    """c^2 e^2 / (e^2 + c^2) from the squared error e^2: ~e^2 near zero, at most c^2."""
    c2 = scale * scale
    return c2 * sq_error / (sq_error + c2)
