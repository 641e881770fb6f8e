"""Noise schedules and the diffusion with initial distributions (supplementary Sec. 1.2, Eqs. 1-3).

Timesteps are indexed t = 0 .. T-1 with t = 0 the least noisy (abar_0 = 1 - beta_0 ~ 1) and T-1 the noisiest,
as in DDPM implementations. CloseInt, which the paper follows, uses T = 100 training steps with the cosine
schedule, the defaults here.

The initial-distribution process of Eq. 2 diffuses the ground truth x0 toward the initial estimate x (here
`x_init`) instead of toward zero:

    x_t = x_init + sqrt(abar_t) (x0 - x_init) + sqrt(1 - abar_t) sigma eps,   eps ~ N(0, I)      (Eq. 2)

`sigma` is the standard deviation of the noise (a scalar, or one value per feature dimension; the paper's
"eps ~ N(0, sigma)"), so x_T ~ N(x_init, sigma^2). Written for the residual r = x - x_init this is ordinary
DDPM diffusion of r0 = x0 - x_init with noise sigma eps, so DDPM/DDIM formulas apply to r unchanged; Eq. 3's
posterior q(x_{t-1} | x_t, x0) has the usual DDPM mean (in r) and variance beta_tilde_t sigma^2.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

BetaSchedule = Literal["cosine", "linear"]


def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Nichol & Dhariwal (2021): abar(t) = f(t) / f(0), f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2);
    beta_t = 1 - abar(t + 1) / abar(t), clipped at max_beta to avoid the singularity at t = T."""
    def f(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / num_timesteps) / f(i / num_timesteps), max_beta)
             for i in range(num_timesteps)]
    return torch.tensor(betas, dtype=torch.float64)


def linear_betas(num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """Ho et al.'s linear schedule. The (1e-4, 0.02) end points are for T = 1000; they are scaled by 1000 / T
    (as in improved DDPM) so that any T spans the same amount of noise."""
    scale = 1000.0 / num_timesteps
    return torch.linspace(beta_start * scale, beta_end * scale, num_timesteps, dtype=torch.float64)


class NoiseSchedule:
    """beta_t, alpha_t = 1 - beta_t, abar_t = prod_{i <= t} alpha_i, and the DDPM posterior coefficients.

    Everything is kept in float64 (cast to the data's dtype where it is used): products of 100 factors close
    to one lose precision in float32.
    """

    def __init__(self, num_train_timesteps: int = 100, beta_schedule: BetaSchedule = "cosine",
                 beta_start: float = 1e-4, beta_end: float = 0.02, *, betas: Tensor | None = None):
        if betas is None:
            if beta_schedule == "cosine":
                betas = cosine_betas(num_train_timesteps)
            elif beta_schedule == "linear":
                betas = linear_betas(num_train_timesteps, beta_start, beta_end)
            else:
                raise ValueError(f"unknown beta schedule {beta_schedule!r}")
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if ((betas < 0) | (betas > 1)).any():
            raise ValueError("betas must lie in [0, 1]")
        self.beta_schedule = beta_schedule
        self.num_train_timesteps = int(betas.numel())
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        # beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t): the variance of q(x_{t-1} | x_t, x0) (Eq. 3).
        denom = 1.0 - self.alphas_cumprod
        safe = torch.where(denom > 0, denom, torch.ones_like(denom))
        self.posterior_variance = torch.where(
            denom > 0, betas * (1.0 - self.alphas_cumprod_prev) / safe, torch.zeros_like(denom))
        # Posterior mean = coef_x0 * x0 + coef_xt * x_t (for the residual r in the initial-distribution case).
        self.posterior_mean_coef_x0 = torch.where(
            denom > 0, betas * self.alphas_cumprod_prev.sqrt() / safe, torch.ones_like(denom))
        self.posterior_mean_coef_xt = torch.where(
            denom > 0, (1.0 - self.alphas_cumprod_prev) * self.alphas.sqrt() / safe, torch.zeros_like(denom))

    @classmethod
    def from_betas(cls, betas) -> "NoiseSchedule":
        return cls(betas=torch.as_tensor(betas, dtype=torch.float64), beta_schedule="custom")  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.num_train_timesteps

    def __repr__(self) -> str:
        return f"NoiseSchedule(T={self.num_train_timesteps}, {self.beta_schedule})"

    @staticmethod
    def gather(values: Tensor, t: Tensor | int, like: Tensor) -> Tensor:
        """values[t] shaped (B, 1, ..., 1) to broadcast against `like` (B, ...), in like's dtype/device."""
        t = torch.as_tensor(t, device=values.device, dtype=torch.long)
        out = values[t].to(device=like.device, dtype=like.dtype)
        if out.dim() == 0:
            return out
        return out.reshape(out.shape[0], *([1] * (like.dim() - 1)))

    def alpha_bar(self, t: Tensor | int, like: Tensor) -> Tensor:
        return self.gather(self.alphas_cumprod, t, like)


class InitialDistributionDiffusion:
    """Forward process, noise/x0 conversions and posterior of the diffusion with initial distributions (Eq. 2-3).

    sigma: the noise standard deviation, a float or a tensor broadcastable to the data's trailing
    dimensions (e.g. one value per feature, shape (D,)). Features with sigma = 0 are never noised.
    """

    def __init__(self, schedule: NoiseSchedule | None = None, sigma: float | Tensor = 1.0):
        self.schedule = schedule or NoiseSchedule()
        self.sigma = torch.as_tensor(sigma, dtype=torch.float32)
        if (self.sigma < 0).any():
            raise ValueError("sigma must be non-negative")

    @property
    def num_train_timesteps(self) -> int:
        return self.schedule.num_train_timesteps

    def sigma_like(self, x: Tensor) -> Tensor:
        return self.sigma.to(device=x.device, dtype=x.dtype)

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None,
                         device: torch.device | str | None = None) -> Tensor:
        """Uniform training timesteps (B,) in [0, T)."""
        t = torch.randint(0, self.num_train_timesteps, (batch,), generator=generator)
        return t.to(device) if device is not None else t

    @staticmethod
    def mix(x0: Tensor, x_init: Tensor, sqrt_alpha_bar: Tensor, noise_std: Tensor, noise: Tensor) -> Tensor:
        """x_init + sqrt_abar (x0 - x_init) + noise_std * noise, written as a blend of x0 and x_init so that
        sqrt_abar = 1 returns x0 and sqrt_abar = 0 returns x_init + noise_std * noise bit for bit."""
        return sqrt_alpha_bar * x0 + (1.0 - sqrt_alpha_bar) * x_init + noise_std * noise

    def q_sample(self, x0: Tensor, x_init: Tensor, t: Tensor | int, noise: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Sample x_t ~ q(x_t | x0) of Eq. 2; x0, x_init (B, ...), t (B,) integer timesteps."""
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        abar = self.schedule.alpha_bar(t, x0)
        return self.mix(x0, x_init, abar.sqrt(), (1.0 - abar).sqrt() * self.sigma_like(x0), noise)

    def prior_sample(self, x_init: Tensor, generator: torch.Generator | None = None,
                     t: Tensor | int | None = None) -> Tensor:
        """Start of sampling: x_init + std * eps with std = sqrt(1 - abar_t) sigma (the marginal's spread at t;
        the noisiest step by default, where it is sigma up to ~1e-7 with the cosine schedule)."""
        t = self.num_train_timesteps - 1 if t is None else t
        abar = self.schedule.alpha_bar(t, x_init)
        noise = torch.randn(x_init.shape, generator=generator, dtype=x_init.dtype).to(x_init.device)
        return x_init + (1.0 - abar).sqrt() * self.sigma_like(x_init) * noise

    def predict_noise(self, x_t: Tensor, x_init: Tensor, x0: Tensor, t: Tensor | int) -> Tensor:
        """The eps that, with this x0, gives x_t under Eq. 2 (0 where sigma or sqrt(1 - abar) is 0)."""
        abar = self.schedule.alpha_bar(t, x_t)
        scale = (1.0 - abar).sqrt() * self.sigma_like(x_t)
        residual = (x_t - x_init) - abar.sqrt() * (x0 - x_init)
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        return torch.where(scale > 0, residual / safe, torch.zeros_like(residual))

    def predict_x0(self, x_t: Tensor, x_init: Tensor, noise: Tensor, t: Tensor | int) -> Tensor:
        """Inverse of `predict_noise`: the x0 for which x_t is q_sample(x0, x_init, t, noise)."""
        abar = self.schedule.alpha_bar(t, x_t)
        r_t = x_t - x_init - (1.0 - abar).sqrt() * self.sigma_like(x_t) * noise
        return x_init + r_t / abar.sqrt()

    def q_posterior(self, x0: Tensor, x_t: Tensor, x_init: Tensor, t: Tensor | int) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x0) (Eq. 3): in r = x - x_init the DDPM posterior,
        mean = x_init + c0 (x0 - x_init) + ct (x_t - x_init), variance = beta_tilde_t sigma^2."""
        s = self.schedule
        coef_x0 = s.gather(s.posterior_mean_coef_x0, t, x_t)
        coef_xt = s.gather(s.posterior_mean_coef_xt, t, x_t)
        mean = x_init + coef_x0 * (x0 - x_init) + coef_xt * (x_t - x_init)
        variance = s.gather(s.posterior_variance, t, x_t) * self.sigma_like(x_t) ** 2
        return mean, variance
