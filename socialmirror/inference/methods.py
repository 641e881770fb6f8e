"""The methods the estimator runs: SocialMirror, the baselines and the ablations, as named presets.

Every preset is a `MethodConfig`; all of them run through the same code (`TwoPersonMotionEstimator`) on the
same bundle, so a comparison between them isolates what the preset switches.

    preset                 denoiser      text  geometry  contact  penetration  reprojection  refiner
    independent            independent   -     -         -        -            -             -
    closeint               two-branch    -     -         -        -            on            -
    socialmirror           two-branch    on    on        on       on           on            on
    socialmirror-linear    as socialmirror, Geometry Optimizer with the Linear embedding (paper Table 2)
    no-text / no-geometry / no-contact / no-refiner   socialmirror with that one part off

`independent` (design.md): each person alone, no cross-attention, no guidance; it uses the bundle's separately
trained `independent` denoiser (and, as cross-attention would join the two persons there, no refiner either).
`closeint`: the two-branch diffusion model without text and without geometric guidance; it keeps the 2D
reprojection guidance, which is what keeps a sample on the image. Text is confidence-weighted in
`socialmirror`: the ControlNet's contribution is scaled by the annotation's confidence (`text_weight`).

Default guidance weights are in the units of `socialmirror.diffusion.guidance` (losses in m^2 or squared box
fractions, one gradient step = plain gradient descent on raw 6D rotations, metres and depth thanks to the
decoder's preconditioning). Measured on the toy cases of the tests, a single term's gradient step diverges
from about weight 3 (geometry), 10 (reprojection) and 1 (contact, before its pull was bounded); the defaults
sit well inside that range. Between terms, the contact pull is bounded (0.1 m) so that penetration, whose
pull is the overlap depth, wins where they conflict. They are not tuned on data: with a trained bundle, tune
them on a validation set (`GuidanceWeights`, `guidance_iterations`). A first check on an early, partly
trained bundle (synthetic two-person scenes): with 4 gradient steps per sampling step the result moved from
the initial estimate toward the Geometry Optimizer's joints (camera-frame joint error 0.415 -> 0.303 m, the
optimizer's own 0.284) and the 2D error fell 47 -> 34 px; a geometry weight of 1.5 already overshot.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

GUIDANCE_TERMS: tuple[str, ...] = ("geometry", "contact", "penetration", "reprojection")


@dataclass(frozen=True)
class GuidanceWeights:
    """Weight of each guidance term; 0 switches a term off."""

    geometry: float = 0.5
    contact: float = 0.25
    penetration: float = 1.0
    reprojection: float = 2.0

    def without(self, *names: str) -> "GuidanceWeights":
        unknown = [n for n in names if n not in GUIDANCE_TERMS]
        if unknown:
            raise ValueError(f"unknown guidance terms {unknown}; known: {list(GUIDANCE_TERMS)}")
        return dataclasses.replace(self, **{n: 0.0 for n in names})

    def enabled(self) -> tuple[str, ...]:
        return tuple(n for n in GUIDANCE_TERMS if getattr(self, n) != 0)


NO_GUIDANCE = GuidanceWeights(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class MethodConfig:
    name: str
    denoiser: Literal["two_branch", "independent"] = "two_branch"
    text: bool = True  # condition on the annotation's sentences through the ControlNet
    text_confidence_weighting: bool = True  # ControlNet contribution x annotation confidence
    geometry_embedding: Literal["stgcn", "linear"] = "stgcn"  # which Geometry Optimizer guides
    guidance: GuidanceWeights = field(default_factory=GuidanceWeights)
    refiner: bool = True
    # Sampling.
    sampling_steps: int = 5
    eta: float = 0.0  # 0: deterministic DDIM after the seeded start
    guidance_step_size: float = 1.0
    guidance_iterations: int = 4  # gradient steps on x0 per sampling step
    guidance_max_grad_norm: float | None = None
    # How x_T ~ N(x_init, sigma^2) is drawn: "shared" uses one noise draw for both persons of a window, so
    # exchanging the two persons' inputs exchanges the outputs exactly (the model is symmetric, and so is
    # its start); "independent" draws each person's noise separately; "none" starts at x_init itself.
    initial_noise: Literal["shared", "independent", "none"] = "shared"
    contact_radius: float = 0.08  # metres
    # Windows.
    window: int = 16  # L, the clip length the networks were trained on
    stride: int = 8  # windows overlap by window - stride frames, blended by join_windows
    batch_windows: int = 16  # windows per network call (bounds memory on long sequences)
    refine_chunk: int = 256  # the refiner runs over chunks of this many frames ...
    refine_overlap: int = 32  # ... overlapping by this many (its receptive field is ~20 frames)

    def __post_init__(self):
        if not 1 <= self.stride <= self.window:
            raise ValueError("stride must be in [1, window]")
        if self.refine_overlap >= self.refine_chunk:
            raise ValueError("refine_overlap must be smaller than refine_chunk")

    def without_guidance(self, *names: str) -> "MethodConfig":
        return dataclasses.replace(self, guidance=self.guidance.without(*names))


def _presets() -> dict[str, MethodConfig]:
    full = MethodConfig(name="socialmirror")
    r = dataclasses.replace
    return {
        "independent": MethodConfig(name="independent", denoiser="independent", text=False,
                                    guidance=NO_GUIDANCE, refiner=False),
        "closeint": MethodConfig(name="closeint", text=False, refiner=False,
                                 guidance=GuidanceWeights().without("geometry", "contact", "penetration")),
        "socialmirror": full,
        "socialmirror-linear": r(full, name="socialmirror-linear", geometry_embedding="linear"),
        "no-text": r(full, name="no-text", text=False),
        "no-geometry": r(full, name="no-geometry", guidance=full.guidance.without("geometry")),
        "no-contact": r(full, name="no-contact", guidance=full.guidance.without("contact")),
        "no-refiner": r(full, name="no-refiner", refiner=False),
    }


METHOD_PRESETS: dict[str, MethodConfig] = _presets()


def method_config(method: str | MethodConfig) -> MethodConfig:
    """A preset by name (see the table above), or the config itself."""
    if isinstance(method, MethodConfig):
        return method
    try:
        return METHOD_PRESETS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; presets: {', '.join(METHOD_PRESETS)}") from None
