"""The shared robust penalties against hand-computed values."""
import pytest
import torch

from socialmirror.losses.robust import geman_mcclure, huber


def test_huber_is_quadratic_then_linear_with_a_bounded_slope():
    e = torch.tensor([0.0, 0.05, 0.1, 0.3], requires_grad=True)
    h = huber(e, 0.1)
    assert h.tolist() == pytest.approx([0.0, 0.5 * 0.05 ** 2, 0.5 * 0.1 ** 2, 0.1 * (0.3 - 0.05)])
    h.sum().backward()
    assert e.grad.tolist() == pytest.approx([0.0, 0.05, 0.1, 0.1])  # the pull never exceeds delta


def test_geman_mcclure_saturates_at_the_squared_scale():
    sq = torch.tensor([0.0, 0.01, 1.0, 1e6])
    rho = geman_mcclure(sq, 0.1)
    assert rho.tolist() == pytest.approx([0.0, 0.01 * 0.01 / 0.02, 0.01 * 1.0 / 1.01, 0.01 * 1e6 / (1e6 + 0.01)])
    assert float(rho.max()) < 0.01
