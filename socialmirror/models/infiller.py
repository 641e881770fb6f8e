"""The Semantic-Guided Motion Infiller's networks: the two-branch motion denoiser and the text ControlNet
(supplementary Sec. 1.3, Eq. 9).

Motion x is (B, 2, L, D) per person per frame (D = 157 with SMPL, 153 with anny; a constructor argument).

`MotionDenoiser` predicts x0 from x_t, the timestep t, the initial estimate x_init, F_img and the validity
mask:
    tokens = Linear([x_t - x_init, x_init])        (initial estimate as input conditioning, see below)
    h^0    = tokens + sequence position encoding
    c      = TimestepEmbedding(t) + Linear(LN(F_img)) + e_missing on missed frames   (per person, per frame)
    h^N    = TwoBranchTransformer(h^0, c, mask)      (Eq. 8 blocks, shared weights)
    x0     = x_init + Linear(h^N)

How x_init is used. The diffusion of Eq. 2 is ordinary diffusion of the residual r = x - x_init, so the
network reads the residual r_t = x_t - x_init (what CloseInt feeds its denoiser) and, concatenated with it,
x_init itself: the noisy residual alone does not say what the initial pose is, and the network needs it to
judge which parts of the estimate are implausible (e.g. a missed or occluded frame). The prediction is a
correction of the estimate, x0 = x_init + head(h), with a small initial head so that an untrained model
starts at x0 ~ x_init. `condition_on_init=False` drops the x_init input (CloseInt's variant: residual only).

`TextControlNet` (Eq. 9): a trainable copy of the N blocks, initialised from the base blocks' weights. Its
input is h^0 + Z1(F_text) with F_text (B, 2, 256) per person broadcast over the frames; it uses the same c
and mask as the base. The output of copy block i goes through the zero-initialised linear Z2_i and is added
to base block i's output before that feeds base block i+1:
    h_i^c = T_i(h_{i-1}^c; Theta) + w * Z2_i(T_i(c_{i-1}; Theta_c)),  c_0 = h^0 + Z1(F_text)
w is the per-clip text weight in [0, 1] (confidence-reweighted text conditioning; 1 by default). With both Z
layers at zero the model equals the base model exactly.

`SemanticMotionInfiller` = base denoiser + optional ControlNet + the trainable 384 -> 256 projection of the
MiniLM sentence embedding into F_text; `freeze_base()` for the second training phase.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator, Literal

import torch
from torch import Tensor, nn

from socialmirror.models.interaction_transformer import (
    AttentionMasks,
    ConditionEncoder,
    TransformerConfig,
    TwoBranchTransformer,
)


@dataclass
class InfillerConfig:
    motion_dim: int = 157  # D: 157 with SMPL (24 x 6D + 10 betas + 3 camera), 153 with anny
    dim: int = 160
    depth: int = 4
    heads: int = 4
    img_dim: int | None = None  # width of F_img per person per frame; None: no image features
    conditioning: Literal["add", "film"] = "add"
    cross_attention: bool = True  # False: the `independent` baseline
    feedforward: bool = True  # False: Eq. 8 exactly, no feed-forward layer
    ff_mult: int = 2
    dropout: float = 0.0
    position_encoding: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_len: int = 64
    condition_on_init: bool = True  # feed x_init next to x_t - x_init
    head_init_gain: float = 0.1  # small output head: an untrained model predicts x0 ~ x_init
    controlnet: bool = True  # build the text ControlNet (False: the `closeint` baseline, no text)
    text_dim: int = 256  # F_text
    text_input_dim: int = 384  # the sentence encoder's width (all-MiniLM-L6-v2)

    def transformer_config(self) -> TransformerConfig:
        return TransformerConfig(
            dim=self.dim, depth=self.depth, heads=self.heads, cond_dim=self.dim,
            conditioning=self.conditioning, cross_attention=self.cross_attention,
            feedforward=self.feedforward, ff_mult=self.ff_mult, dropout=self.dropout,
            position_encoding=self.position_encoding, max_len=self.max_len)


@dataclass
class DenoiserState:
    """What the base denoiser computed before its blocks; the ControlNet starts from the same."""

    h0: Tensor  # (B, 2, L, dim)
    cond: Tensor | None  # (B, 2, L, dim)
    masks: AttentionMasks


def _zero_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MotionDenoiser(nn.Module):
    """x0 prediction network of the diffusion with initial distributions (the infiller without text)."""

    def __init__(self, config: InfillerConfig | None = None):
        super().__init__()
        self.config = config = config or InfillerConfig()
        in_features = config.motion_dim * (2 if config.condition_on_init else 1)
        self.motion_embed = nn.Linear(in_features, config.dim)
        self.condition = ConditionEncoder(config.dim, config.img_dim, timestep=True)
        self.transformer = TwoBranchTransformer(config.transformer_config())
        self.head = nn.Linear(config.dim, config.motion_dim)
        nn.init.xavier_uniform_(self.head.weight, gain=config.head_init_gain)
        nn.init.zeros_(self.head.bias)

    def encode(self, x_t: Tensor, t: Tensor, x_init: Tensor, img_features: Tensor | None = None,
               mask: Tensor | None = None) -> DenoiserState:
        batch, persons, length, _ = x_t.shape
        residual = x_t - x_init
        features = torch.cat([residual, x_init], dim=-1) if self.config.condition_on_init else residual
        h0 = self.transformer.add_positions(self.motion_embed(features))
        cond = self.condition(batch, length, t=t, img_features=img_features, mask=mask)
        masks = self.transformer.attention_masks(mask, length, x_t.device)
        return DenoiserState(h0=h0, cond=cond, masks=masks)

    def decode(self, hidden: Tensor, x_init: Tensor) -> Tensor:
        return x_init + self.head(hidden)

    def forward(self, x_t: Tensor, t: Tensor, x_init: Tensor, img_features: Tensor | None = None,
                mask: Tensor | None = None, block_residuals: list[Tensor] | None = None) -> Tensor:
        """x_t, x_init (B, 2, L, D); t (B,) long; img_features (B, 2, L, img_dim); mask (B, 2, L) bool
        (True = observed). Returns the x0 prediction (B, 2, L, D)."""
        state = self.encode(x_t, t, x_init, img_features, mask)
        out = self.transformer.run_blocks(state.h0, state.cond, block_residuals=block_residuals,
                                          masks=state.masks)
        return self.decode(out.hidden, x_init)


class TextControlNet(nn.Module):
    """Trainable copy of the denoiser's blocks with zero-initialised linear layers in and out (Eq. 9)."""

    def __init__(self, base: MotionDenoiser, text_dim: int = 256):
        super().__init__()
        dim = base.config.dim
        self.blocks = copy.deepcopy(base.transformer.blocks)
        self.text_in = _zero_linear(text_dim, dim)  # Z1
        self.zero_out = nn.ModuleList([_zero_linear(dim, dim) for _ in self.blocks])  # Z2_i
        for p in self.parameters():
            p.requires_grad_(True)

    @torch.no_grad()
    def reset_from(self, base: MotionDenoiser) -> None:
        """Copy the (trained) base blocks into the copy and zero the Z layers again: call this when the
        ControlNet is attached to a base loaded from a checkpoint, before training the ControlNet."""
        self.blocks.load_state_dict(base.transformer.blocks.state_dict())
        for layer in [self.text_in, *self.zero_out]:
            layer.weight.zero_()
            layer.bias.zero_()

    def forward(self, state: DenoiserState, text_features: Tensor) -> list[Tensor]:
        """text_features: F_text (B, 2, text_dim). Returns the N residuals Z2_i(copy block i output)."""
        c = state.h0 + self.text_in(text_features)[:, :, None, :]
        residuals = []
        for block, zero in zip(self.blocks, self.zero_out):
            c = block(c, state.cond, state.masks)
            residuals.append(zero(c))
        return residuals


class SemanticMotionInfiller(nn.Module):
    """Base `MotionDenoiser` + optional `TextControlNet` + the sentence-embedding projection to F_text."""

    def __init__(self, config: InfillerConfig | None = None):
        super().__init__()
        self.config = config = config or InfillerConfig()
        self.denoiser = MotionDenoiser(config)
        if config.controlnet:
            self.text_projection: nn.Linear | None = nn.Linear(config.text_input_dim, config.text_dim)
            self.controlnet: TextControlNet | None = TextControlNet(self.denoiser, config.text_dim)
        else:
            self.text_projection = None
            self.controlnet = None
        self.base_frozen = False

    # -- training phases --------------------------------------------------------------------------------
    def freeze_base(self, frozen: bool = True) -> None:
        """Phase 2: the base denoiser is locked (no gradients, kept in eval mode); only the ControlNet and the
        text projection train."""
        self.base_frozen = frozen
        self.denoiser.requires_grad_(not frozen)
        self.denoiser.train(self.training and not frozen)

    def train(self, mode: bool = True) -> "SemanticMotionInfiller":
        super().train(mode)
        if self.base_frozen:
            self.denoiser.eval()
        return self

    def controlnet_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters of phase 2: ControlNet copy, zero layers and text projection."""
        for module in (self.controlnet, self.text_projection):
            if module is not None:
                yield from module.parameters()

    def reset_controlnet(self) -> None:
        """Re-initialise the ControlNet from the current base weights (after loading a trained base)."""
        if self.controlnet is not None:
            self.controlnet.reset_from(self.denoiser)

    # -- forward ------------------------------------------------------------------------------------------
    def text_features(self, text_embedding: Tensor) -> Tensor:
        """(B, 2, 384) sentence embeddings -> F_text (B, 2, 256)."""
        if self.text_projection is None:
            raise RuntimeError("this infiller was built without the text ControlNet")
        return self.text_projection(text_embedding)

    def forward(self, x_t: Tensor, t: Tensor, x_init: Tensor, img_features: Tensor | None = None,
                mask: Tensor | None = None, text_embedding: Tensor | None = None,
                text_weight: Tensor | float | None = None) -> Tensor:
        """As `MotionDenoiser.forward`, plus text_embedding (B, 2, 384) (None: no text, the base model) and
        text_weight, a scalar or (B,) or (B, 2) in [0, 1] that scales the ControlNet's contribution."""
        base = self.denoiser
        state = base.encode(x_t, t, x_init, img_features, mask)
        residuals = None
        if self.controlnet is not None and text_embedding is not None:
            residuals = self.controlnet(state, self.text_features(text_embedding))
            if text_weight is not None:
                weight = torch.as_tensor(text_weight, dtype=x_t.dtype, device=x_t.device)
                if weight.dim() == 1:
                    weight = weight[:, None]
                weight = weight.reshape(*weight.shape, *([1] * (4 - weight.dim()))) if weight.dim() else weight
                residuals = [r * weight for r in residuals]
        out = base.transformer.run_blocks(state.h0, state.cond, block_residuals=residuals, masks=state.masks)
        return base.decode(out.hidden, x_init)
