"""The two-branch interaction transformer shared by every motion network (supplementary Sec. 1.3, Eqs. 4-8).

Tensors hold both persons side by side: tokens are (B, 2, L, dim), person 0 is agent a and person 1 agent b.
One set of weights serves both branches; each block updates both persons from the SAME previous states:

    h_a^n = LayerNorm(h_a^{n-1} + SA(h_a^{n-1}) + CA(h_a^{n-1}, h_b^{n-1}))          (Eq. 8)
    h_b^n = LayerNorm(h_b^{n-1} + SA(h_b^{n-1}) + CA(h_b^{n-1}, h_a^{n-1}))

Because the weights are shared and no person-identity embedding is added anywhere, swapping the two persons
in the input swaps them in the output (the networks are equivariant to the person order); the tests check this.

Conditioning (timestep embedding + per-frame observation features F_img, built by `ConditionEncoder`) is a
per-person, per-frame vector c of width `cond_dim`. Two ways of injecting it, chosen by
`TransformerConfig.conditioning`:

* ``"add"`` (default): every block first adds its own projection of c to the states and then applies Eq. 8 to
  the conditioned states, h_in = h^{n-1} + W_c^n c. The conditioning then also shapes the attention queries
  and keys, so a frame's observation quality (keypoint confidences, a missed-detection flag) can steer which
  frames it attends to: what infilling a missed frame needs.
* ``"film"``: Eq. 8 runs on the raw states and its normalised output is modulated,
  h^n = LN(...) * (1 + gamma(c)) + beta(c), with gamma and beta zero-initialised (adaLN-zero style), so a
  fresh block is exactly Eq. 8.

The paper's Eq. 8 has no feed-forward layer. It is included by default (``feedforward=True``) because a block
made of attention and LayerNorm alone has almost no per-token non-linearity; it is applied after Eq. 8 as
h <- LayerNorm(h + FF(h)). ``feedforward=False`` gives the paper's block exactly.

``cross_attention=False`` removes CA (the ``independent`` baseline: each person is processed alone).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

Conditioning = Literal["add", "film"]
PositionEncoding = Literal["sinusoidal", "learned"]


@dataclass
class TransformerConfig:
    """Configuration of `TwoBranchTransformer` (and of its blocks)."""

    dim: int = 128
    depth: int = 4  # N, the number of blocks
    heads: int = 4  # attention scaling uses the head width C = dim / heads
    cond_dim: int | None = None  # width of the conditioning vector c; None: the blocks take no conditioning
    conditioning: Conditioning = "add"
    cross_attention: bool = True
    feedforward: bool = True
    ff_mult: int = 2
    dropout: float = 0.0
    position_encoding: PositionEncoding = "sinusoidal"
    max_len: int = 64  # only bounds the learned position table; sinusoidal encodings take any length
    attention_window: int | None = None  # attend only to frames with |i - j| <= window (None: all frames)

    def __post_init__(self):
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.conditioning not in ("add", "film"):
            raise ValueError(f"unknown conditioning {self.conditioning!r}")
        if self.position_encoding not in ("sinusoidal", "learned"):
            raise ValueError(f"unknown position encoding {self.position_encoding!r}")


# ----------------------------------------------------------------------------------------------- encodings
def sinusoidal_encoding(positions: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Transformer sinusoidal features of (any-shaped) positions: shape positions.shape + (dim,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=positions.device) / half)
    angles = positions.float()[..., None] * freqs
    enc = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if dim % 2:
        enc = F.pad(enc, (0, 1))
    return enc


class TimestepEmbedding(nn.Module):
    """Diffusion timestep -> vector: sinusoidal features of t followed by a small MLP (as in DDPM/MDM)."""

    def __init__(self, dim: int, out_dim: int | None = None):
        super().__init__()
        out_dim = out_dim or dim
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(sinusoidal_encoding(t, self.dim))


class ConditionEncoder(nn.Module):
    """Builds the per-person, per-frame conditioning vector c (B, 2, L, cond_dim).

    c = TimestepEmbedding(t) + Linear(LayerNorm(F_img)) + e_missing * (1 - valid)

    F_img is (B, 2, L, img_dim), one observation feature per person per frame; the LayerNorm makes its scale
    irrelevant (keypoints in pixels, confidences in [0, 1], box sizes ...). e_missing is a learned vector added
    on frames marked invalid in the validity mask (missed detections), so the networks know which frames
    they have to infill rather than trust. Every term is optional: without a timestep (the Geometry Optimizer)
    or without F_img the remaining terms are used; with none at all the encoder returns None.
    """

    def __init__(self, cond_dim: int, img_dim: int | None = None, timestep: bool = True,
                 missing_embedding: bool = True):
        super().__init__()
        self.cond_dim = cond_dim
        self.img_dim = img_dim
        self.timestep = TimestepEmbedding(cond_dim) if timestep else None
        self.image = (nn.Sequential(nn.LayerNorm(img_dim), nn.Linear(img_dim, cond_dim))
                      if img_dim else None)
        self.missing = nn.Parameter(torch.zeros(cond_dim)) if missing_embedding else None
        if self.missing is not None:
            nn.init.normal_(self.missing, std=0.02)

    def forward(self, batch: int, length: int, t: Tensor | None = None, img_features: Tensor | None = None,
                mask: Tensor | None = None) -> Tensor | None:
        terms: list[Tensor] = []
        if self.timestep is not None:
            if t is None:
                raise ValueError("this condition encoder needs the diffusion timestep t")
            t = torch.as_tensor(t, device=next(self.parameters()).device)
            t = t.expand(batch) if t.dim() == 0 else t
            terms.append(self.timestep(t)[:, None, None, :])
        if self.image is not None:
            if img_features is None:
                raise ValueError(f"this condition encoder needs F_img of width {self.img_dim}")
            terms.append(self.image(img_features))
        elif img_features is not None:
            raise ValueError("F_img given but the network was built without img_dim")
        if self.missing is not None and mask is not None:
            terms.append((~mask.bool()).to(self.missing.dtype)[..., None] * self.missing)
        if not terms:
            return None
        cond = terms[0]
        for term in terms[1:]:
            cond = cond + term
        return cond.expand(batch, 2, length, self.cond_dim)


# ----------------------------------------------------------------------------------------------- attention
@dataclass
class AttentionMasks:
    """Boolean attention masks (True = may attend) for the self- and cross-attention of a flattened batch.

    Masks are (B*2, 1, L, L) or None. `*_has_key` (B*2, 1, L, 1) marks query rows with at least one key:
    a row without any (e.g. the other person is missing on every frame) gets a zero attention output
    instead of the NaN a softmax over nothing would give.
    """

    self_mask: Tensor | None = None
    self_has_key: Tensor | None = None
    cross_mask: Tensor | None = None
    cross_has_key: Tensor | None = None

    @staticmethod
    def build(mask: Tensor | None, length: int, window: int | None = None,
              device: torch.device | None = None) -> "AttentionMasks":
        """mask: (B, 2, L) validity per person per frame (True = observed), or None for all valid."""
        band = None
        if window is not None:
            idx = torch.arange(length, device=device)
            band = ((idx[:, None] - idx[None, :]).abs() <= window)[None, None]  # (1, 1, L, L)
        if mask is None and band is None:
            return AttentionMasks()
        if mask is None:
            return AttentionMasks(band, None, band, None)
        valid = mask.bool()
        batch = valid.shape[0]
        own = valid.reshape(batch * 2, 1, 1, length)
        other = valid.flip(1).reshape(batch * 2, 1, 1, length)

        def finish(keys: Tensor) -> tuple[Tensor, Tensor]:
            full = keys.expand(batch * 2, 1, length, length)
            if band is not None:
                full = full & band
            has_key = full.any(dim=-1, keepdim=True)
            # Rows with no key attend to everything (finite softmax) and are zeroed afterwards.
            return full | ~has_key, has_key

        self_mask, self_has = finish(own)
        cross_mask, cross_has = finish(other)
        return AttentionMasks(self_mask, self_has, cross_mask, cross_has)


class MultiHeadAttention(nn.Module):
    """Softmax(Q K^T / sqrt(C)) V with Q from `query` and K, V from `context` (Eqs. 4-7), several heads.

    C is the head width; the heads' outputs are concatenated and mixed by an output projection.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, query: Tensor, context: Tensor, mask: Tensor | None = None,
                has_key: Tensor | None = None) -> Tensor:
        n, lq, dim = query.shape
        lk = context.shape[1]
        q = self.to_q(query).view(n, lq, self.heads, self.head_dim).transpose(1, 2)
        k = self.to_k(context).view(n, lk, self.heads, self.head_dim).transpose(1, 2)
        v = self.to_v(context).view(n, lk, self.heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        if has_key is not None:
            out = out * has_key.to(out.dtype)
        return self.to_out(out.transpose(1, 2).reshape(n, lq, dim))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 2, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim * mult, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class InteractionBlock(nn.Module):
    """One block of Eq. 8 for both persons at once, weights shared between the two branches."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        dim = config.dim
        self.conditioning = config.conditioning
        self.self_attn = MultiHeadAttention(dim, config.heads, config.dropout)
        self.cross_attn = (MultiHeadAttention(dim, config.heads, config.dropout)
                           if config.cross_attention else None)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(config.dropout)
        cond_dim = config.cond_dim
        self.cond_proj: nn.Module | None = None
        self.film: nn.Module | None = None
        if cond_dim is not None:
            if config.conditioning == "add":
                self.cond_proj = nn.Linear(cond_dim, dim)
            else:
                self.film = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim))
                nn.init.zeros_(self.film[1].weight)
                nn.init.zeros_(self.film[1].bias)
        self.ff = FeedForward(dim, config.ff_mult, config.dropout) if config.feedforward else None
        self.ff_norm = nn.LayerNorm(dim) if config.feedforward else None

    def forward(self, h: Tensor, cond: Tensor | None = None, masks: AttentionMasks | None = None) -> Tensor:
        """h: (B, 2, L, dim) states of both persons; cond: broadcastable to (B, 2, L, cond_dim)."""
        masks = masks or AttentionMasks()
        if cond is not None and self.cond_proj is not None:
            h = h + self.cond_proj(cond)
        batch, persons, length, dim = h.shape
        if persons != 2:
            raise ValueError(f"expected two persons on dim 1, got shape {tuple(h.shape)}")
        own = h.reshape(batch * 2, length, dim)
        other = h.flip(1).reshape(batch * 2, length, dim)  # person b's states for a and vice versa
        # Eq. 8: both SA and CA read the previous states; neither sees the other's update of this block.
        update = own + self.dropout(self.self_attn(own, own, masks.self_mask, masks.self_has_key))
        if self.cross_attn is not None:
            update = update + self.dropout(
                self.cross_attn(own, other, masks.cross_mask, masks.cross_has_key))
        out = self.norm(update).view(batch, 2, length, dim)
        if cond is not None and self.film is not None:
            gamma, beta = self.film(cond).expand(batch, 2, length, 2 * dim).chunk(2, dim=-1)
            out = out * (1 + gamma) + beta
        if self.ff is not None:
            out = self.ff_norm(out + self.dropout(self.ff(out)))
        return out


@dataclass
class TransformerOutput:
    """`hidden`: the last block's output; `block_outputs`: every block's output, in order (the ControlNet
    adds to these); `h0`: the input states after the position encoding."""

    hidden: Tensor
    block_outputs: list[Tensor]
    h0: Tensor


class TwoBranchTransformer(nn.Module):
    """Sequence position encoding followed by N `InteractionBlock`s (shared by both persons)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        if config.position_encoding == "learned":
            self.position_table = nn.Parameter(torch.randn(config.max_len, config.dim) * 0.02)
        else:
            self.position_table = None
        self.blocks = nn.ModuleList([InteractionBlock(config) for _ in range(config.depth)])

    def positions(self, length: int, device=None, dtype=None) -> Tensor:
        """(L, dim) position encoding of frames 0..L-1 (identical for both persons)."""
        if self.position_table is not None:
            if length > self.config.max_len:
                raise ValueError(f"sequence of {length} frames exceeds learned max_len {self.config.max_len}")
            return self.position_table[:length].to(dtype=dtype)
        return sinusoidal_encoding(torch.arange(length, device=device), self.config.dim).to(dtype=dtype)

    def add_positions(self, tokens: Tensor) -> Tensor:
        """tokens (B, 2, L, dim) -> h^0 = tokens + position encoding."""
        return tokens + self.positions(tokens.shape[2], tokens.device, tokens.dtype)

    def attention_masks(self, mask: Tensor | None, length: int, device=None) -> AttentionMasks:
        return AttentionMasks.build(mask, length, self.config.attention_window, device)

    def run_blocks(self, h0: Tensor, cond: Tensor | None = None, mask: Tensor | None = None,
                   block_residuals: Sequence[Tensor | None] | None = None,
                   masks: AttentionMasks | None = None) -> TransformerOutput:
        """Run the N blocks from h^0. `block_residuals[i]`, when given, is added to block i's output before
        it feeds block i+1 (Eq. 9's h_i^c = T(h_{i-1}^c) + Z(...))."""
        if block_residuals is not None and len(block_residuals) != len(self.blocks):
            raise ValueError(f"{len(block_residuals)} block residuals for {len(self.blocks)} blocks")
        if masks is None:
            masks = self.attention_masks(mask, h0.shape[2], h0.device)
        h = h0
        outputs: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            h = block(h, cond, masks)
            if block_residuals is not None and block_residuals[i] is not None:
                h = h + block_residuals[i]
            outputs.append(h)
        return TransformerOutput(hidden=h, block_outputs=outputs, h0=h0)

    def forward(self, tokens: Tensor, cond: Tensor | None = None, mask: Tensor | None = None,
                block_residuals: Sequence[Tensor | None] | None = None) -> TransformerOutput:
        """tokens (B, 2, L, dim) motion embeddings; cond broadcastable to (B, 2, L, cond_dim);
        mask (B, 2, L) bool, True where the person is observed on that frame (keys of missed frames are
        ignored; missed frames still get an output, computed from the others)."""
        return self.run_blocks(self.add_positions(tokens), cond, mask, block_residuals)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
