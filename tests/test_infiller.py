"""The motion denoiser and the text ControlNet (Eq. 9)."""
from __future__ import annotations

import pytest
import torch

from socialmirror.models.infiller import InfillerConfig, MotionDenoiser, SemanticMotionInfiller

B, L, D, IMG = 3, 8, 21, 10


def _config(**overrides):
    values = dict(motion_dim=D, dim=32, depth=2, heads=4, img_dim=IMG, text_dim=16, text_input_dim=24)
    values.update(overrides)
    return InfillerConfig(**values)


def _inputs():
    mask = torch.ones(B, 2, L, dtype=torch.bool)
    mask[0, 1, 3] = mask[2, 0, 5:] = False
    return dict(x_t=torch.randn(B, 2, L, D), t=torch.tensor([0, 37, 99]), x_init=torch.randn(B, 2, L, D),
                img_features=torch.randn(B, 2, L, IMG), mask=mask)


def _swap(inputs):
    return {k: (v.flip(1) if k != "t" and v is not None and v.dim() > 1 else v) for k, v in inputs.items()}


def test_denoiser_shapes_and_person_swap_symmetry():
    model = MotionDenoiser(_config()).eval()
    inputs = _inputs()
    out = model(**inputs)
    assert out.shape == (B, 2, L, D)
    assert torch.allclose(model(**_swap(inputs)), out.flip(1), atol=1e-6)
    # an untrained denoiser starts near the initial estimate (small output head)
    assert (out - inputs["x_init"]).abs().mean() < 0.5
    # it depends on x_t, on t and on F_img
    for key, change in [("x_t", 1.0), ("img_features", 1.0)]:
        changed = dict(inputs, **{key: inputs[key] + change})
        assert not torch.allclose(model(**changed), out)
    assert not torch.allclose(model(**dict(inputs, t=inputs["t"] + 1)), out)


def test_infiller_person_swap_symmetry_with_text():
    model = SemanticMotionInfiller(_config()).eval()
    with torch.no_grad():  # make the ControlNet active, as after training
        for p in model.controlnet_parameters():
            p.add_(0.1 * torch.randn_like(p))
    inputs = _inputs()
    text = torch.randn(B, 2, 24)
    weight = torch.tensor([[1.0, 0.5], [0.2, 0.0], [0.7, 0.7]])
    out = model(**inputs, text_embedding=text, text_weight=weight)
    swapped = model(**_swap(inputs), text_embedding=text.flip(1), text_weight=weight.flip(1))
    assert torch.allclose(swapped, out.flip(1), atol=1e-6)
    # the text weight scales the ControlNet's contribution: 0 is the base model, 1 the full one
    base = model.denoiser(**inputs)
    assert torch.allclose(model(**inputs, text_embedding=text, text_weight=0.0), base, atol=1e-6)
    assert not torch.allclose(model(**inputs, text_embedding=text, text_weight=1.0), base, atol=1e-4)


def test_controlnet_equals_base_at_initialisation():
    model = SemanticMotionInfiller(_config()).eval()
    inputs = _inputs()
    base = model.denoiser(**inputs)
    assert torch.equal(model(**inputs), base)  # without text
    assert torch.equal(model(**inputs, text_embedding=torch.randn(B, 2, 24)), base)  # with text
    assert torch.equal(model(**inputs, text_embedding=torch.randn(B, 2, 24), text_weight=torch.rand(B)), base)
    # the copy starts from the base blocks' weights
    for copy_p, base_p in zip(model.controlnet.blocks.parameters(), model.denoiser.transformer.blocks.parameters()):
        assert torch.equal(copy_p, base_p) and copy_p is not base_p


def test_controlnet_trains_with_the_base_frozen():
    model = SemanticMotionInfiller(_config())
    model.freeze_base()
    model.train()
    assert not model.denoiser.training and model.controlnet.training
    trainable = list(model.controlnet_parameters())
    assert {id(p) for p in trainable} == {id(p) for p in model.parameters() if p.requires_grad}
    base_before = {k: v.clone() for k, v in model.denoiser.state_dict().items()}
    optimiser = torch.optim.AdamW(trainable, lr=1e-3)

    inputs = _inputs()
    text = torch.randn(B, 2, 24)
    target = torch.randn(B, 2, L, D)
    before = model(**inputs, text_embedding=text).detach()

    loss = ((model(**inputs, text_embedding=text) - target) ** 2).mean()
    loss.backward()
    # gradients reach the output zero layers at once; the input zero layer gets them once Z2 is non-zero
    assert all(z.weight.grad is not None and z.weight.grad.abs().sum() > 0 for z in model.controlnet.zero_out)
    assert all(p.grad is None for p in model.denoiser.parameters())
    optimiser.step()
    optimiser.zero_grad()

    after = model(**inputs, text_embedding=text).detach()
    assert not torch.allclose(after, before)
    for k, v in model.denoiser.state_dict().items():
        assert torch.equal(v, base_before[k]), k
    # without text the model is still exactly the (unchanged) base
    assert torch.equal(model(**inputs), model.denoiser(**inputs))

    # the zero layers open one after the other: Z2 moves first, then Z1, then the text projection
    loss = ((model(**inputs, text_embedding=text) - target) ** 2).mean()
    loss.backward()
    assert model.controlnet.text_in.weight.grad.abs().sum() > 0
    assert model.text_projection.weight.grad.abs().sum() == 0
    optimiser.step()
    optimiser.zero_grad()
    loss = ((model(**inputs, text_embedding=text) - target) ** 2).mean()
    loss.backward()
    assert model.text_projection.weight.grad.abs().sum() > 0


def test_reset_controlnet_copies_the_trained_base():
    model = SemanticMotionInfiller(_config())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # a "trained" base and a drifted ControlNet
    model.reset_controlnet()
    inputs = _inputs()
    assert torch.equal(model(**inputs, text_embedding=torch.randn(B, 2, 24)), model.denoiser(**inputs))


@pytest.mark.parametrize("overrides", [dict(controlnet=False), dict(cross_attention=False),
                                       dict(condition_on_init=False, feedforward=False, conditioning="film"),
                                       dict(img_dim=None)])
def test_variants(overrides):
    model = SemanticMotionInfiller(_config(**overrides))
    inputs = _inputs()
    if overrides.get("img_dim", IMG) is None:
        inputs["img_features"] = None
    text = torch.randn(B, 2, 24) if model.controlnet is not None else None
    out = model(**inputs, text_embedding=text)
    assert out.shape == (B, 2, L, D) and torch.isfinite(out).all()
    if overrides.get("cross_attention") is False:  # the independent baseline: person a ignores person b
        changed = dict(inputs, x_t=inputs["x_t"].clone())
        changed["x_t"][:, 1] += 1.0
        assert torch.equal(model(**changed, text_embedding=text)[:, 0], out[:, 0])
