"""Diffusion denoised smoothing and DensePure on a tiny random-weight DDPM (and an oracle).

The oracle ε-predictor knows the clean image x₀: ε̂ = (x_t − √ᾱ_t·x₀)/√(1 − ᾱ_t). With it
both denoisers must return the clean image exactly, and the x_t it is given shows the
scaling: x_t − √ᾱ_t·x₀ has the standard deviation √(1 − ᾱ_t) the model expects at t.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from engine.defences import DEFENCES, DefenceError
from engine.defences.diffusion_smoothing import matched_timestep
from engine.core.seeds import derive_seed
from tests.conftest import photo_tensor
from tests.engine.defences.test_neural import _tiny_ddpm


@pytest.fixture(scope="module")
def ddpm(tmp_path_factory):
    return str(_tiny_ddpm(tmp_path_factory.mktemp("ddpm-smoothing")))


class Oracle(nn.Module):
    """ε̂ from the true x₀ (in [−1, 1]); records every x_t it sees."""

    def __init__(self, x0: torch.Tensor, scheduler) -> None:
        super().__init__()
        self.x0, self.alphas = x0, scheduler.alphas_cumprod
        self.config = SimpleNamespace(sample_size=x0.shape[-1], in_channels=3, out_channels=3)
        self.anchor = nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[torch.Tensor, int]] = []

    def forward(self, xt: torch.Tensor, t: int):
        self.seen.append((xt.clone(), int(t)))
        a = self.alphas[int(t)].to(xt.dtype)
        return SimpleNamespace(sample=(xt - a.sqrt() * self.x0) / (1 - a).sqrt())


def _with_oracle(name: str, ddpm: str, x: torch.Tensor, **kw):
    d = DEFENCES.get(name)(model=ddpm, **kw)
    scheduler = d.diffusion.model[1]
    oracle = Oracle(2 * x - 1, scheduler)
    d.diffusion._model = (oracle, scheduler)
    return d, oracle, scheduler


def test_timestep_matches_the_noise_level_in_model_space(ddpm):
    d = DEFENCES.get("diffusion-smoothing")(model=ddpm, sigma=0.25)
    a = d.diffusion.model[1].alphas_cumprod.double()
    level = (1 - a) / a
    t = d.timestep
    assert t == matched_timestep(a, 0.25) and 0 < t < len(a) - 1
    assert abs(level[t] - 0.25) <= min(abs(level[t - 1] - 0.25), abs(level[t + 1] - 0.25))  # (2σ)² = 0.25
    assert DEFENCES.get("diffusion-smoothing")(model=ddpm, sigma=0.12).timestep < t
    with pytest.raises(DefenceError, match="choose a smaller sigma"):
        _ = DEFENCES.get("diffusion-smoothing")(model=ddpm, sigma=2.0).timestep


@pytest.mark.parametrize("name", ["diffusion-smoothing", "densepure"])
def test_oracle_denoiser_recovers_the_clean_image_from_correctly_scaled_noise(ddpm, name):
    x = photo_tensor("astronaut", (32, 32))  # the tiny model's size: no resize
    extra = {"votes": 1} if name == "densepure" else {}
    d, oracle, scheduler = _with_oracle(name, ddpm, x, sigma=0.25, n=2, **extra)
    y = d(x, seed=4)
    assert torch.allclose(y, x, atol=1e-4)
    xt, t = oracle.seen[0]
    assert t == d.timestep
    a = float(scheduler.alphas_cumprod[t])
    residual_sd = float((xt - a ** 0.5 * (2 * x - 1)).std())
    assert residual_sd == pytest.approx((1 - a) ** 0.5, rel=0.08)  # the DDPM marginal at t
    if name == "densepure":
        assert [s[1] for s in oracle.seen] == list(range(t, -1, -1))  # the full reverse chain


def test_diffusion_smoothing_certifies_with_the_tiny_model(ddpm, brisque):
    x = photo_tensor("coffee", (40, 40))
    d = DEFENCES.get("diffusion-smoothing")(model=ddpm, sigma=0.12, n=6, radius=0.05, alpha=0.05,
                                            aggregate="median")
    c = d.certify(brisque, x, 2)
    assert c.samples.shape == (6, 1) and float(c.low) <= float(c.score) <= float(c.high)
    assert torch.equal(c.samples, d.certify(brisque, x, 2).samples)
    assert d(x, seed=2).shape == x.shape and not d.differentiable


def test_densepure_votes_and_same_draws_for_clean_and_attacked(ddpm, brisque):
    x = photo_tensor("chelsea", (32, 32))
    x_adv = (x + (2 / 255) * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    d = DEFENCES.get("densepure")(model=ddpm, sigma=0.05, n=1, votes=3, alpha=0.1, radius=0.02)
    a = d(x, seed=5)
    assert torch.equal(a, d(x, seed=5))
    assert (d(x_adv, seed=5) - a).abs().mean() < (d(x, seed=6) - a).abs().mean() / 3
    # the base score is the median of the votes' scores (vote v ≥ 1: its own reverse-process seeds)
    eps = d._noise(x.shape[1:], 1, torch.Generator().manual_seed(5))
    seeds = (5, derive_seed(5, "vote", 1), derive_seed(5, "vote", 2))
    per_vote = torch.stack([brisque.score(d._samples(x, eps, 0, s)) for s in seeds])
    assert float(d.sample_scores(brisque, x, 5)[0, 0]) == pytest.approx(float(per_vote.median()), abs=1e-4)
    assert per_vote.std() > 0
