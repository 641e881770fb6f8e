"""The methods the estimator runs: SocialMirror, the baselines and the ablations, as named presets.

Every preset is a `MethodConfig`; all of them run through the same code (`TwoPersonMotionEstimator`) on the
same bundle, so a comparison between them isolates what the preset switches.

    preset                 denoiser      text  geometry  contact  penetration  reprojection  refiner  fit
    independent            independent   -     -         -        -            -             -        -
    closeint               two-branch    -     -         -        -            on            -        -
    socialmirror           two-branch    on    on        on       on           on            on       on (no contacts)
    socialmirror-linear    as socialmirror, Geometry Optimizer with the Linear embedding (paper Table 2)
    no-text / no-geometry / no-contact / no-refiner / socialmirror-nofit   socialmirror with that one part off

`fit` is the fit to the evidence after the refiner (`socialmirror.inference.fit`): the baselines end at the
networks' output, as the paper's comparison does.

`independent` (docs/architecture.md): each person alone, no cross-attention, no guidance; it uses the bundle's
separately trained `independent` denoiser (and, as cross-attention would join the two persons there, no refiner
either).
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

from socialmirror.diffusion.sampler import SamplerConfig
from socialmirror.inference.fit import EvidenceFitConfig

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
    # The fit to the evidence after the refiner (2D keypoints, MediaPipe's 3D, contacts, no interpenetration).
    fit: EvidenceFitConfig = field(default_factory=EvidenceFitConfig)
    # Sampling: what `sampler_config` hands the DDIM sampler. The defaults are the sampler's own (5 DDIM steps,
    # deterministic), except the guidance iterations: 4 gradient steps on x0 per sampling step (the presets of
    # the `socialmirror` family take 2: see `_presets`).
    sampling_steps: int = SamplerConfig.num_steps
    eta: float = SamplerConfig.eta  # 0: deterministic DDIM after the seeded start
    guidance_step_size: float = SamplerConfig.guidance_step_size
    guidance_iterations: int = 4  # gradient steps on x0 per sampling step
    guidance_max_grad_norm: float | None = SamplerConfig.guidance_max_grad_norm
    # How x_T ~ N(x_init, sigma^2) is drawn: "shared" uses one noise draw for both persons of a window, so
    # exchanging the two persons' inputs exchanges the outputs exactly (the model is symmetric, and so is
    # its start); "independent" draws each person's noise separately; "none" starts at x_init itself.
    initial_noise: Literal["shared", "independent", "none"] = "shared"
    contact_radius: float = 0.08  # metres
    # Windows. Their length is not the method's: it is the clip length the bundle was trained on (its
    # `clip_len`, 16), which the estimator reads from the bundle.
    stride: int = 8  # windows overlap by clip_len - stride frames, blended by join_windows
    batch_windows: int = 16  # windows per network call (bounds memory on long sequences)
    refine_chunk: int = 256  # the refiner runs over chunks of this many frames ...
    refine_overlap: int = 32  # ... overlapping by this many (its receptive field is ~20 frames)

    def __post_init__(self):
        if self.stride < 1:
            raise ValueError("stride must be at least 1 (and at most the bundle's clip length)")
        if self.refine_overlap >= self.refine_chunk:
            raise ValueError("refine_overlap must be smaller than refine_chunk")
        if self.sampling_steps < 1:
            raise ValueError("sampling_steps must be at least 1")
        if self.guidance_iterations < 0:
            raise ValueError("guidance_iterations must not be negative")

    @classmethod
    def preset(cls, name: str) -> "MethodConfig":
        """The preset of that name (the table above); makes a `MethodConfig` field of a config take a preset
        name, with adjustments (see `socialmirror.config`)."""
        return method_config(name)

    def sampler_config(self) -> SamplerConfig:
        """The DDIM sampler's settings for this method."""
        return SamplerConfig(num_steps=self.sampling_steps, eta=self.eta, guidance_step_size=self.guidance_step_size,
                             guidance_iterations=self.guidance_iterations,
                             guidance_max_grad_norm=self.guidance_max_grad_norm)


NO_FIT = EvidenceFitConfig(enabled=False)


def _presets() -> dict[str, MethodConfig]:
    # Two guidance steps per sampling step, not 4: measured under render (60 frames, shipped weights; R-MPJPE /
    # Int, mm) 4 -> 2 -> 1: validation 282 / 325 -> 280 / 319 -> 310 / 374; held-out 283 / 320 -> 271 / 302;
    # CMU 262 / 190 -> 264 / 189; Buetepage 190 / 191 -> 190 / 189 (README, Speed): half the guided sampler's
    # gradient steps for the same accuracy, with the fit after it. Without the fit (`socialmirror-nofit`) the
    # guidance is the last word on the image, so it is not assumed to hold there.
    # The annotated contacts guide the sampler but are not a term of the fit: with them in the fit too, measured
    # under render (60 frames, shipped weights, the four data sets of the README's tables; R-MPJPE / Int, mm), the
    # fit pulled the hands together against the image: without them validation 251 / 297 -> 250 / 295, held-out
    # 268 / 303 -> 261 / 291, Buetepage 190 / 189 -> 170 / 161, CMU 264 / 189 -> 293 / 180; per sequence R-MPJPE
    # lower on 16 of 22 that changed (Int 18 of 22), MPJPE and Accel lower on all four data sets (README, "The
    # annotated contacts split in two").
    full = MethodConfig(name="socialmirror", guidance_iterations=2, fit=EvidenceFitConfig(contact_weight=0.0))
    r = dataclasses.replace
    return {
        "independent": MethodConfig(name="independent", denoiser="independent", text=False,
                                    guidance=NO_GUIDANCE, refiner=False, fit=NO_FIT),
        "closeint": MethodConfig(name="closeint", text=False, refiner=False, fit=NO_FIT,
                                 guidance=GuidanceWeights().without("geometry", "contact", "penetration")),
        "socialmirror": full,
        "socialmirror-linear": r(full, name="socialmirror-linear", geometry_embedding="linear"),
        "no-text": r(full, name="no-text", text=False),
        "no-geometry": r(full, name="no-geometry", guidance=full.guidance.without("geometry")),
        # Without the annotated contacts anywhere (the fit has none in this family).
        "no-contact": r(full, name="no-contact", guidance=full.guidance.without("contact")),
        "no-refiner": r(full, name="no-refiner", refiner=False),
        "socialmirror-nofit": r(full, name="socialmirror-nofit", fit=NO_FIT, guidance_iterations=4),
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
