"""DDIM / ancestral sampling of the diffusion with initial distributions, with guidance hooks.

The sampler is apart from the network (diffusers-style): it gets a `denoiser(x_t, t) -> x0` callable (the
caller binds x_init, F_img, the mask and the text into it) and never looks inside.

Sampling starts at x_T ~ N(x_init, sigma^2) (`InitialDistributionDiffusion.prior_sample`, reproducible with a
seeded generator) and runs a few steps (5 by default) spaced over the T_train training steps. Each step:

1. x0_net = denoiser(x_t, t), and eps = the noise that x0_net implies for x_t (Eq. 2 solved for eps);
2. guidance: x0 = x0_net, then `guidance_iterations` gradient steps
       x0 <- x0 - guidance_step_size * grad_x0 sum_k weight_k * term_k(x0, context)
   over the enabled `GuidanceTerm`s, then the `x0_hooks` (callables returning a corrected x0, e.g. a
   projection);
3. the DDIM update in the residual r = x - x_init (the process on r is ordinary diffusion):
       r_prev = sqrt(abar_prev) r0 + sqrt(1 - abar_prev - s^2) sigma eps + s sigma z,
       s^2 = eta^2 (1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev),
   with r0 the guided x0 minus x_init and eps the network's (so guidance moves the clean component and the
   noise direction stays the network's). eta = 0 is deterministic DDIM; eta = 1 is the DDPM ancestral step
   whose variance is beta_tilde sigma^2 (Eq. 3) when the steps are consecutive training steps. The last step
   goes to abar = 1 and returns the (guided) x0 itself.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from socialmirror.diffusion.schedule import InitialDistributionDiffusion

TimestepSpacing = Literal["trailing", "leading", "linspace"]
Denoiser = Callable[[Tensor, Tensor], Tensor]


@dataclass
class GuidanceContext:
    """What a guidance term may look at besides x0. `extras` carries whatever the caller puts there
    (targets of the Geometry Optimizer, contacts, keypoints, a body model ...)."""

    t: Tensor  # (B,) training timestep of the current step
    step: int  # index of the step, 0 .. num_steps - 1
    num_steps: int
    x_t: Tensor
    x_init: Tensor
    extras: dict[str, Any] = field(default_factory=dict)


class GuidanceTerm(ABC):
    """A differentiable loss on the predicted x0 that sampling descends.

    Subclasses implement `__call__(x0, context) -> loss`, a scalar or one value per sample (B,) (summed
    by the sampler). The sampler multiplies it by `weight` and skips the term when `enabled` is False.
    """

    def __init__(self, weight: float = 1.0, enabled: bool = True, name: str | None = None):
        self.weight = float(weight)
        self.enabled = bool(enabled)
        self.name = name or type(self).__name__

    @abstractmethod
    def __call__(self, x0: Tensor, context: GuidanceContext) -> Tensor:
        ...


class FunctionGuidance(GuidanceTerm):
    """A guidance term from a plain callable loss(x0, context)."""

    def __init__(self, loss: Callable[[Tensor, GuidanceContext], Tensor], weight: float = 1.0,
                 enabled: bool = True, name: str | None = None):
        super().__init__(weight, enabled, name or getattr(loss, "__name__", "FunctionGuidance"))
        self.loss = loss

    def __call__(self, x0: Tensor, context: GuidanceContext) -> Tensor:
        return self.loss(x0, context)


X0Hook = Callable[[Tensor, GuidanceContext], Tensor]


@dataclass
class SamplerConfig:
    # The project's one default of the sampling steps (the paper's 5 DDIM steps); the methods take it
    # (``MethodConfig.sampling_steps``, the setting users change: ``--set method.sampling_steps=N``).
    num_steps: int = 5
    eta: float = 0.0  # 0: deterministic DDIM; 1: DDPM-like ancestral noise (beta_tilde)
    timestep_spacing: TimestepSpacing = "trailing"
    guidance_step_size: float = 1.0
    guidance_iterations: int = 1
    guidance_max_grad_norm: float | None = None  # per-sample clip of the guidance gradient (None: no clip)


@dataclass
class DDIMStepOutput:
    prev_sample: Tensor  # x_{t_prev}
    mean: Tensor  # the deterministic part of x_{t_prev}
    std: Tensor  # standard deviation of the added noise, broadcastable to x (0 for eta = 0)
    pred_x0: Tensor  # the x0 the step used


@dataclass
class SamplerOutput:
    x0: Tensor
    timesteps: list[int]
    trajectory: list[Tensor]  # x_t at the start of each step, then the result
    x0_predictions: list[Tensor]  # the network's x0 at each step (before guidance)


class DDIMSampler:
    def __init__(self, diffusion: InitialDistributionDiffusion, config: SamplerConfig | None = None):
        self.diffusion = diffusion
        self.config = config or SamplerConfig()
        if not 1 <= self.config.num_steps <= diffusion.num_train_timesteps:
            raise ValueError(f"num_steps must be in [1, {diffusion.num_train_timesteps}]")

    @property
    def schedule(self):
        return self.diffusion.schedule

    def timesteps(self) -> list[int]:
        """The training timesteps visited, noisiest first. For T = 100 and 5 steps: trailing [99, 79, 59, 39,
        19] (starts at the noisiest step, where x_T ~ N(x_init, sigma^2) holds), leading [80, 60, 40, 20, 0]
        (CloseInt's 'ddim5'), linspace [99, 74, 50, 25, 0]."""
        total, n = self.diffusion.num_train_timesteps, self.config.num_steps
        spacing = self.config.timestep_spacing
        if spacing == "trailing":
            steps = np.round(np.arange(total, 0, -total / n)).astype(np.int64) - 1
        elif spacing == "leading":
            steps = (np.arange(n) * (total // n))[::-1]
        elif spacing == "linspace":
            steps = np.round(np.linspace(0, total - 1, n)).astype(np.int64)[::-1]
        else:
            raise ValueError(f"unknown timestep spacing {spacing!r}")
        return [int(s) for s in steps]

    def _alpha_bar(self, t: int, like: Tensor) -> Tensor:
        if t < 0:  # past the last step: clean data
            return torch.ones((), dtype=like.dtype, device=like.device)
        return self.schedule.alphas_cumprod[t].to(dtype=like.dtype, device=like.device)

    def step(self, x_t: Tensor, x0_pred: Tensor, t: int, t_prev: int, x_init: Tensor,
             eps: Tensor | None = None, eta: float | None = None,
             generator: torch.Generator | None = None) -> DDIMStepOutput:
        """One update from training step t to t_prev (< t; -1 for the end). `eps` defaults to the noise that
        x0_pred implies; pass the network's own when x0_pred has been guided."""
        eta = self.config.eta if eta is None else eta
        if eps is None:
            eps = self.diffusion.predict_noise(x_t, x_init, x0_pred, t)
        a_t, a_prev = self._alpha_bar(t, x_t), self._alpha_bar(t_prev, x_t)
        sigma = self.diffusion.sigma_like(x_t)
        variance = eta ** 2 * (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev) if eta > 0 else torch.zeros_like(a_t)
        direction = (1 - a_prev - variance).clamp_min(0).sqrt()
        sqrt_prev = a_prev.sqrt()
        mean = sqrt_prev * x0_pred + (1 - sqrt_prev) * x_init
        if bool(direction > 0):
            mean = mean + direction * sigma * eps
        std = variance.sqrt() * sigma
        sample = mean
        if bool(variance > 0):
            z = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype).to(x_t.device)
            sample = mean + std * z
        return DDIMStepOutput(prev_sample=sample, mean=mean, std=std, pred_x0=x0_pred)

    def guide(self, x0: Tensor, terms: Sequence[GuidanceTerm], context: GuidanceContext) -> Tensor:
        """Gradient steps on x0 along the weighted sum of the enabled terms (see the module docstring)."""
        active = [term for term in terms if term.enabled and term.weight != 0]
        if not active:
            return x0
        cfg = self.config
        x0 = x0.detach()
        for _ in range(cfg.guidance_iterations):
            with torch.enable_grad():
                x = x0.clone().requires_grad_(True)
                loss = sum(term.weight * term(x, context).sum() for term in active)
                (grad,) = torch.autograd.grad(loss, x)
            if cfg.guidance_max_grad_norm is not None:
                norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
                factor = (cfg.guidance_max_grad_norm / norms).clamp(max=1.0)
                grad = grad * factor.view(-1, *([1] * (grad.dim() - 1)))
            x0 = x0 - cfg.guidance_step_size * grad
        return x0

    def sample(self, denoiser: Denoiser, x_init: Tensor, *, generator: torch.Generator | None = None,
               x_T: Tensor | None = None, guidance: Sequence[GuidanceTerm] = (),
               x0_hooks: Sequence[X0Hook] = (), extras: dict[str, Any] | None = None,
               return_intermediates: bool = False) -> Tensor | SamplerOutput:
        """Run the sampler. denoiser(x_t, t) with t a (B,) long tensor returns the x0 prediction."""
        steps = self.timesteps()
        batch = x_init.shape[0]
        x = self.diffusion.prior_sample(x_init, generator, steps[0]) if x_T is None else x_T
        trajectory, predictions = [x], []
        for i, t in enumerate(steps):
            t_prev = steps[i + 1] if i + 1 < len(steps) else -1
            t_batch = torch.full((batch,), t, dtype=torch.long, device=x_init.device)
            with torch.no_grad():
                x0_net = denoiser(x, t_batch)
            eps = self.diffusion.predict_noise(x, x_init, x0_net, t)
            x0 = x0_net
            if guidance or x0_hooks:
                context = GuidanceContext(t=t_batch, step=i, num_steps=len(steps), x_t=x, x_init=x_init,
                                          extras=extras if extras is not None else {})
                x0 = self.guide(x0, guidance, context)
                for hook in x0_hooks:
                    x0 = hook(x0, context)
            x = self.step(x, x0, t, t_prev, x_init, eps=eps, generator=generator).prev_sample
            predictions.append(x0_net)
            trajectory.append(x)
        if return_intermediates:
            return SamplerOutput(x0=x, timesteps=steps, trajectory=trajectory, x0_predictions=predictions)
        return x
