"""The Geometry Optimizer: identity at initialisation, person-swap symmetry, both embeddings."""
from __future__ import annotations

import pytest
import torch

from socialmirror.models.geometry_optimizer import GeometryOptimizer, GeometryOptimizerConfig, pair_centre
from socialmirror.models.stgcn import STGCNConfig

B, L, IMG = 3, 8, 10


def _mask():
    mask = torch.ones(B, 2, L, dtype=torch.bool)
    mask[0, 1, 3] = mask[2, 0, 5:] = False
    return mask


@pytest.mark.parametrize("embedding", ["stgcn", "linear"])
def test_geometry_optimizer(embedding):
    config = GeometryOptimizerConfig(dim=32, depth=2, heads=4, img_dim=IMG, embedding=embedding,
                                     stgcn=STGCNConfig(channels=(8, 8), temporal_kernel=3))
    model = GeometryOptimizer(config).eval()
    joints = torch.randn(B, 2, L, 24, 3) * 0.3 + torch.tensor([0.0, 0.0, 4.0])
    img = torch.randn(B, 2, L, IMG)
    mask = _mask()
    # untrained, the optimizer is the identity (zero-initialised residual head)
    assert torch.equal(model(joints, img, mask), joints)
    with torch.no_grad():
        model.head.weight.normal_(std=0.1)
    out = model(joints, img, mask)
    assert out.shape == (B, 2, L, 24, 3) and not torch.allclose(out, joints)
    assert torch.allclose(model(joints.flip(1), img.flip(1), mask.flip(1)), out.flip(1), atol=1e-6)
    # translation of the whole pair moves the centre conditioning only: output still depends on it
    assert not torch.allclose(model(joints + 1.0, img, mask) - 1.0, out, atol=1e-5)
    loss = out.square().mean()
    loss.backward()
    assert model.embedding.parameters().__next__().grad is not None


def test_pair_centre_uses_observed_frames():
    joints = torch.zeros(1, 2, 4, 24, 3)
    joints[0, 0, :, 0] = torch.tensor([1.0, 0.0, 2.0])
    joints[0, 1, :, 0] = torch.tensor([3.0, 0.0, 2.0])
    joints[0, 1, 3, 0] = torch.tensor([100.0, 0.0, 2.0])  # a missed frame with a wild estimate
    mask = torch.ones(1, 2, 4, dtype=torch.bool)
    mask[0, 1, 3] = False
    assert torch.allclose(pair_centre(joints, mask), torch.tensor([[13 / 7, 0.0, 2.0]]))
    assert torch.allclose(pair_centre(joints, torch.zeros_like(mask)), pair_centre(joints))
