"""The two-branch interaction transformer (Eqs. 4-8): person-swap equivariance, the CA switch, masks."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from socialmirror.models.interaction_transformer import (
    ConditionEncoder,
    InteractionBlock,
    TransformerConfig,
    TwoBranchTransformer,
)

B, L, DIM = 2, 6, 32


def _swap(x):
    return x.flip(1)


def _perturb(module, scale=0.1):
    """Fresh FiLM layers are zero: randomise every parameter so all paths are exercised."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


@pytest.mark.parametrize("conditioning", ["add", "film"])
@pytest.mark.parametrize("feedforward", [True, False])
def test_swapping_persons_swaps_outputs(conditioning, feedforward):
    config = TransformerConfig(dim=DIM, depth=2, heads=4, cond_dim=16, conditioning=conditioning,
                               feedforward=feedforward)
    model = _perturb(TwoBranchTransformer(config)).eval()
    tokens = torch.randn(B, 2, L, DIM)
    cond = torch.randn(B, 2, L, 16)
    mask = torch.ones(B, 2, L, dtype=torch.bool)
    mask[0, 1, 2] = mask[1, 0, 4] = False
    for c, m in [(None, None), (cond, None), (cond, mask)]:
        out = model(tokens, c, m)
        swapped = model(_swap(tokens), None if c is None else _swap(c), None if m is None else _swap(m))
        assert torch.allclose(swapped.hidden, _swap(out.hidden), atol=1e-6)
        assert len(out.block_outputs) == 2 and torch.equal(out.block_outputs[-1], out.hidden)
        for a, b in zip(out.block_outputs, swapped.block_outputs):
            assert torch.allclose(b, _swap(a), atol=1e-6)


def test_block_is_equation_8():
    """Without conditioning or feed-forward, a block computes LayerNorm(h_a + SA(h_a) + CA(h_a, h_b))."""
    config = TransformerConfig(dim=DIM, depth=1, heads=1, feedforward=False)
    block = _perturb(InteractionBlock(config))
    h = torch.randn(B, 2, L, DIM)

    def attention(attn, query, context):
        q, k, v = attn.to_q(query), attn.to_k(context), attn.to_v(context)
        weights = torch.softmax(q @ k.transpose(-1, -2) / DIM ** 0.5, dim=-1)
        return attn.to_out(weights @ v)

    h_a, h_b = h[:, 0], h[:, 1]
    expected_a = F.layer_norm(h_a + attention(block.self_attn, h_a, h_a) + attention(block.cross_attn, h_a, h_b),
                              (DIM,), block.norm.weight, block.norm.bias)
    expected_b = F.layer_norm(h_b + attention(block.self_attn, h_b, h_b) + attention(block.cross_attn, h_b, h_a),
                              (DIM,), block.norm.weight, block.norm.bias)
    out = block(h)
    assert torch.allclose(out[:, 0], expected_a, atol=1e-5)
    assert torch.allclose(out[:, 1], expected_b, atol=1e-5)


def test_without_cross_attention_persons_are_independent():
    config = TransformerConfig(dim=DIM, depth=2, heads=4, cond_dim=DIM, cross_attention=False)
    model = _perturb(TwoBranchTransformer(config))
    assert all(block.cross_attn is None for block in model.blocks)
    tokens = torch.randn(B, 2, L, DIM)
    cond = torch.randn(B, 2, L, DIM)
    changed = tokens.clone()
    changed[:, 1] = torch.randn(B, L, DIM)
    cond_changed = cond.clone()
    cond_changed[:, 1] += 1.0
    a = model(tokens, cond).hidden
    b = model(changed, cond_changed).hidden
    assert torch.equal(a[:, 0], b[:, 0])
    assert not torch.allclose(a[:, 1], b[:, 1])
    # with cross-attention person a does see person b
    full = _perturb(TwoBranchTransformer(TransformerConfig(dim=DIM, depth=2, heads=4)))
    assert not torch.allclose(full(tokens).hidden[:, 0], full(changed).hidden[:, 0])


def test_missed_frames_are_ignored_as_keys():
    model = _perturb(TwoBranchTransformer(TransformerConfig(dim=DIM, depth=2, heads=4)))
    tokens = torch.randn(B, 2, L, DIM)
    mask = torch.ones(B, 2, L, dtype=torch.bool)
    mask[:, 1, 3] = False  # person b missed on frame 3
    changed = tokens.clone()
    changed[:, 1, 3] = torch.randn(B, DIM) * 5
    a = model(tokens, mask=mask).hidden
    b = model(changed, mask=mask).hidden
    keep = torch.ones(L, dtype=torch.bool)
    keep[3] = False
    # nothing else depends on the missed frame's content; the missed frame itself still gets an output
    assert torch.allclose(a[:, 0], b[:, 0], atol=1e-6)
    assert torch.allclose(a[:, 1, keep], b[:, 1, keep], atol=1e-6)
    assert torch.isfinite(a).all()


def test_a_person_missing_everywhere_gives_finite_outputs():
    model = _perturb(TwoBranchTransformer(TransformerConfig(dim=DIM, depth=2, heads=4)))
    tokens = torch.randn(B, 2, L, DIM, requires_grad=True)
    mask = torch.ones(B, 2, L, dtype=torch.bool)
    mask[0, 1] = False
    out = model(tokens, mask=mask).hidden
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(tokens.grad).all()


def test_attention_window_limits_the_receptive_field():
    model = _perturb(TwoBranchTransformer(TransformerConfig(dim=DIM, depth=1, heads=4, attention_window=1)))
    tokens = torch.randn(1, 2, 10, DIM)
    changed = tokens.clone()
    changed[:, :, 0] += 1.0
    diff = (model(tokens).hidden - model(changed).hidden).abs().amax(dim=(0, 1, 3))
    assert (diff[:2] > 0).all() and (diff[2:] == 0).all()


def test_position_encodings_and_condition_encoder():
    learned = TwoBranchTransformer(TransformerConfig(dim=DIM, depth=1, heads=4, position_encoding="learned",
                                                     max_len=8))
    assert learned(torch.randn(1, 2, 8, DIM)).hidden.shape == (1, 2, 8, DIM)
    with pytest.raises(ValueError):
        learned(torch.randn(1, 2, 9, DIM))
    sinus = TwoBranchTransformer(TransformerConfig(dim=DIM, depth=1, heads=4))
    h0 = sinus.add_positions(torch.zeros(1, 2, 40, DIM))
    assert torch.equal(h0[:, 0], h0[:, 1]) and not torch.equal(h0[:, :, 0], h0[:, :, 1])

    encoder = ConditionEncoder(16, img_dim=5, timestep=True)
    mask = torch.ones(B, 2, L, dtype=torch.bool)
    mask[0, 0, 1] = False
    c = encoder(B, L, t=torch.tensor([3, 70]), img_features=torch.randn(B, 2, L, 5), mask=mask)
    assert c.shape == (B, 2, L, 16)
    with pytest.raises(ValueError):
        encoder(B, L, t=torch.tensor([3, 70]))  # F_img is required when img_dim is set
    assert ConditionEncoder(16, None, timestep=False, missing_embedding=False)(B, L) is None
