"""Noise schedules, the initial-distribution forward process (Eq. 2), its posterior (Eq. 3) and the sampler."""
from __future__ import annotations

import pytest
import torch

from socialmirror.diffusion.sampler import (
    DDIMSampler,
    FunctionGuidance,
    GuidanceContext,
    GuidanceTerm,
    SamplerConfig,
)
from socialmirror.diffusion.schedule import InitialDistributionDiffusion, NoiseSchedule

D = 7


def _data(batch=3, length=4):
    x0 = torch.randn(batch, 2, length, D)
    x_init = x0 + 0.3 * torch.randn(batch, 2, length, D)
    return x0, x_init


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedule_monotone_and_bounded(kind):
    s = NoiseSchedule(100, kind)
    assert len(s) == 100
    assert ((s.betas > 0) & (s.betas <= 0.999)).all()
    abar = s.alphas_cumprod
    assert (abar[1:] < abar[:-1]).all()
    assert abar[0] > 0.99 and abar[-1] < 0.01
    assert (s.posterior_variance >= 0).all() and (s.posterior_variance <= s.betas + 1e-12).all()
    assert s.posterior_variance[0] == 0


def test_forward_process_end_points_are_exact():
    # abar = 1 (t = 0), 0.5, 0 (t = 2)
    schedule = NoiseSchedule.from_betas([0.0, 0.5, 1.0])
    assert torch.equal(schedule.alphas_cumprod, torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64))
    sigma = torch.linspace(0.1, 2.0, D)
    diffusion = InitialDistributionDiffusion(schedule, sigma)
    x0, x_init = _data()
    eps = torch.randn_like(x0)
    batch = x0.shape[0]
    clean = diffusion.q_sample(x0, x_init, torch.zeros(batch, dtype=torch.long), eps)
    assert torch.equal(clean, x0)
    noisiest = diffusion.q_sample(x0, x_init, torch.full((batch,), 2), eps)
    assert torch.equal(noisiest, x_init + sigma * eps)
    mid = diffusion.q_sample(x0, x_init, torch.ones(batch, dtype=torch.long), eps)
    expected = x_init + 0.5 ** 0.5 * (x0 - x_init) + 0.5 ** 0.5 * sigma * eps
    assert torch.allclose(mid, expected, atol=1e-6)


def test_forward_process_statistics_and_inverses():
    diffusion = InitialDistributionDiffusion(NoiseSchedule(), sigma=0.5)
    x0 = torch.zeros(20000, D)
    x_init = torch.ones(20000, D)
    t = torch.full((20000,), 60)
    xt = diffusion.q_sample(x0, x_init, t, generator=torch.Generator().manual_seed(1))
    abar = diffusion.schedule.alphas_cumprod[60].item()
    assert abs(xt.mean().item() - (1 - abar ** 0.5)) < 0.01
    assert abs(xt.std().item() - 0.5 * (1 - abar) ** 0.5) < 0.01
    # predict_noise and predict_x0 invert q_sample
    x0, x_init = _data()
    eps = torch.randn_like(x0)
    t = torch.tensor([5, 50, 95])
    xt = diffusion.q_sample(x0, x_init, t, eps)
    assert torch.allclose(diffusion.predict_noise(xt, x_init, x0, t), eps, atol=1e-4)
    assert torch.allclose(diffusion.predict_x0(xt, x_init, eps, t), x0, atol=1e-4)


def test_ddim_with_oracle_returns_x0_exactly():
    diffusion = InitialDistributionDiffusion(NoiseSchedule(), sigma=torch.linspace(0.2, 1.0, D))
    x0, x_init = _data()
    for spacing in ("trailing", "leading", "linspace"):
        sampler = DDIMSampler(diffusion, SamplerConfig(num_steps=5, timestep_spacing=spacing))
        calls = []

        def oracle(x_t, t):
            calls.append(t)
            return x0

        out = sampler.sample(oracle, x_init, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out, x0)
        assert len(calls) == 5 and calls[0].dtype == torch.long and calls[0].shape == (3,)
    assert DDIMSampler(diffusion).timesteps() == [99, 79, 59, 39, 19]
    assert DDIMSampler(diffusion, SamplerConfig(timestep_spacing="leading")).timesteps() == [80, 60, 40, 20, 0]


def test_ddim_oracle_trajectory_follows_the_forward_process():
    """With eta = 0 and a perfect x0, each x_t of the trajectory is q_sample(x0, x_init, t, eps_T)."""
    diffusion = InitialDistributionDiffusion(NoiseSchedule(), sigma=0.7)
    sampler = DDIMSampler(diffusion)
    x0, x_init = _data()
    eps = torch.randn_like(x0)
    steps = sampler.timesteps()
    x_T = diffusion.q_sample(x0, x_init, torch.full((3,), steps[0]), eps)
    out = sampler.sample(lambda x, t: x0, x_init, x_T=x_T, return_intermediates=True)
    for t, x_t in zip(steps, out.trajectory):
        assert torch.allclose(x_t, diffusion.q_sample(x0, x_init, torch.full((3,), t), eps), atol=1e-5)


def test_sampler_deterministic_under_seed_and_eta():
    diffusion = InitialDistributionDiffusion(NoiseSchedule(), sigma=1.0)
    x0, x_init = _data()

    def denoiser(x_t, t):  # a smooth, input-dependent stand-in for a network
        return 0.5 * x_t + 0.5 * x_init + 0.01 * t.float().view(-1, 1, 1, 1)

    for eta in (0.0, 1.0):
        sampler = DDIMSampler(diffusion, SamplerConfig(eta=eta))
        a = sampler.sample(denoiser, x_init, generator=torch.Generator().manual_seed(3))
        b = sampler.sample(denoiser, x_init, generator=torch.Generator().manual_seed(3))
        c = sampler.sample(denoiser, x_init, generator=torch.Generator().manual_seed(4))
        assert torch.equal(a, b)
        assert not torch.allclose(a, c)


def test_ancestral_step_matches_the_posterior_of_eq3():
    """eta = 1 between consecutive training steps is the DDPM step: mean and variance of q(x_{t-1} | x_t, x0)."""
    sigma = torch.linspace(0.3, 1.5, D)
    diffusion = InitialDistributionDiffusion(NoiseSchedule(), sigma=sigma)
    sampler = DDIMSampler(diffusion, SamplerConfig(eta=1.0))
    x0, x_init = _data()
    for t in (1, 30, 99):
        x_t = diffusion.q_sample(x0, x_init, torch.full((3,), t))
        step = sampler.step(x_t, x0, t, t - 1, x_init)
        mean, variance = diffusion.q_posterior(x0, x_t, x_init, torch.full((3,), t))
        assert torch.allclose(step.mean, mean, atol=1e-5)
        assert torch.allclose(torch.broadcast_to(step.std ** 2, variance.shape), variance, atol=1e-6)
        assert not torch.equal(step.prev_sample, step.mean)


class PullTowards(GuidanceTerm):
    def __init__(self, target, weight=1.0):
        super().__init__(weight)
        self.target = target

    def __call__(self, x0, context: GuidanceContext):
        assert context.t.shape == (x0.shape[0],) and context.extras["tag"] == 1
        return ((x0 - self.target) ** 2).flatten(1).sum(1)


def test_guidance_moves_the_result_toward_its_target():
    diffusion = InitialDistributionDiffusion(NoiseSchedule(), sigma=1.0)
    sampler = DDIMSampler(diffusion, SamplerConfig(guidance_step_size=0.1))
    x0, x_init = _data()
    target = x0 + 1.0

    def run(guidance):
        return sampler.sample(lambda x, t: x0, x_init, generator=torch.Generator().manual_seed(0),
                              guidance=guidance, extras={"tag": 1})

    plain = run([])
    pulled = run([PullTowards(target)])
    distance = lambda x: (x - target).norm().item()  # noqa: E731
    assert distance(pulled) < distance(plain)
    # one gradient step of size 0.1 on |x0 - target|^2 at the last step: x0 + 0.2 (target - x0)
    assert torch.allclose(pulled, x0 + 0.2, atol=1e-5)
    # disabled or zero-weight terms change nothing; weights scale the pull
    off = PullTowards(target)
    off.enabled = False
    assert torch.equal(run([off]), plain)
    assert torch.equal(run([PullTowards(target, weight=0.0)]), plain)
    assert distance(run([PullTowards(target, weight=2.0)])) < distance(pulled)
    # plain callables through FunctionGuidance, and x0 hooks that return a corrected x0
    fn = FunctionGuidance(lambda x, ctx: ((x - target) ** 2).sum())
    assert torch.allclose(run([fn]), pulled, atol=1e-6)
    hooked = sampler.sample(lambda x, t: x0, x_init, x0_hooks=[lambda x, ctx: target])
    assert torch.equal(hooked, target)


def test_guidance_gradient_clipping():
    diffusion = InitialDistributionDiffusion(NoiseSchedule(), sigma=1.0)
    sampler = DDIMSampler(diffusion, SamplerConfig(guidance_step_size=1.0, guidance_max_grad_norm=0.5))
    x0 = torch.zeros(2, 2, 3, D)
    context = GuidanceContext(t=torch.zeros(2, dtype=torch.long), step=0, num_steps=1, x_t=x0, x_init=x0,
                              extras={"tag": 1})
    guided = sampler.guide(x0, [PullTowards(torch.full_like(x0, 10.0))], context)
    assert torch.allclose(guided.flatten(1).norm(dim=1), torch.full((2,), 0.5), atol=1e-5)
