"""Certified intervals against closed forms, on hand-made metrics with a known Lipschitz constant.

``Brightness``: M(z) = 100·mean(z), bounds (0, 100). On a mid-grey image with small σ no
noisy value leaves [0, 1], so the clamp never acts and, with w = 1/√d (d = 3·H·W), f is
linear with ‖∇f‖₂ = 1/√d: the median of f(x + ε) is exactly mean(x) and the worst
perturbation of norm r, δ = ±r·w, moves every sample by r/√d.

``Step``: M(z) = 100·[mean(z) ≥ b], a half-space indicator, for which the mean-smoothing
certificate is tight: g(x) = Φ((mean(x) − b)·√d/σ) and g(x + δ) = Φ(Φ⁻¹(g(x)) ± r/σ) at
δ = ±r·w.
"""
from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import binom, norm

from engine.defences import DEFENCES
from engine.evaluation.certified import (certified_columns, mean_certificate, mean_margin, order_ranks,
                                         percentile_certificate)
from engine.metrics.base import Metric

SIZE = 8
D = 3 * SIZE * SIZE
W = 1 / math.sqrt(D)  # the per-value entry of the unit vector along which brightness grows


class Brightness(Metric):
    name = "brightness"
    bounds = (0.0, 100.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 100 * x.flatten(1).mean(1)


class Step(Brightness):
    name = "step"

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 100 * (x.flatten(1).mean(1) >= self.threshold).float()


def grey(level: float = 0.5) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (level + 0.02 * torch.rand(1, 3, SIZE, SIZE, generator=g))


def test_mean_certificate_is_the_formula():
    y = torch.rand(50, 3, generator=torch.Generator().manual_seed(1)) * 80 + 10  # scores in [10, 90]
    sigma, r, alpha = 0.25, 0.1, 0.01
    c = mean_certificate(y, (0.0, 100.0), sigma, r, alpha)
    g = (y.double() / 100).mean(0).numpy()
    t = math.sqrt(math.log(2 / alpha) / (2 * 50))
    assert torch.allclose(c.score.double(), torch.tensor(100 * g), atol=1e-4)
    assert torch.allclose(c.low.double(), torch.tensor(100 * norm.cdf(norm.ppf(g - t) - r / sigma)), atol=1e-4)
    assert torch.allclose(c.high.double(), torch.tensor(100 * norm.cdf(norm.ppf(g + t) + r / sigma)), atol=1e-4)
    # a lower-better metric's bounds are (worst, best) = (high, low): same interval
    flipped = mean_certificate(y, (100.0, 0.0), sigma, r, alpha)
    assert torch.equal(flipped.low, c.low) and torch.equal(flipped.high, c.high)
    # radius 0 and huge n: the interval closes on the score
    many = torch.full((10 ** 6, 1), 37.0)
    tight = mean_certificate(many, (0.0, 100.0), sigma, 0.0, alpha)
    assert tight.high - tight.low < 0.5 and tight.low < 37 < tight.high


def test_bernstein_margin_shrinks_with_small_variance_and_hoeffding_does_not():
    calm = 0.5 + 0.001 * torch.randn(10_000, 1, generator=torch.Generator().manual_seed(2)).double()
    wild = torch.randint(0, 2, (10_000, 1), generator=torch.Generator().manual_seed(3)).double()
    h_calm, h_wild = float(mean_margin(calm, 0.001)), float(mean_margin(wild, 0.001))
    assert h_calm == h_wild == pytest.approx(math.sqrt(math.log(2000) / 20_000))
    assert float(mean_margin(calm, 0.001, "bernstein")) < h_calm / 5
    assert float(mean_margin(wild, 0.001, "bernstein")) > h_wild  # no gain for a spread-out score


@pytest.mark.parametrize("n,p,sigma,r,alpha", [(64, 0.5, 0.25, 0.1, 0.01), (500, 0.5, 0.12, 0.05, 0.001),
                                               (100, 0.3, 0.5, 0.25, 0.05)])
def test_order_statistic_ranks_are_the_binomial_bounds(n, p, sigma, r, alpha):
    k_minus, k_plus = order_ranks(n, p, sigma, r, alpha)
    p_plus, p_minus = norm.cdf(norm.ppf(p) + r / sigma), norm.cdf(norm.ppf(p) - r / sigma)
    # k+: smallest rank whose order statistic is above the p+ quantile with probability >= 1 - α/2
    assert binom.cdf(k_plus - 1, n, p_plus) >= 1 - alpha / 2 > binom.cdf(k_plus - 2, n, p_plus)
    # k-: largest rank whose order statistic is below the p- quantile with probability >= 1 - α/2
    assert binom.sf(k_minus - 1, n, p_minus) >= 1 - alpha / 2 > binom.sf(k_minus, n, p_minus)
    assert 1 <= k_minus < math.ceil(n * p) < k_plus <= n


def test_too_few_samples_give_the_metric_bounds():
    y = torch.linspace(30, 60, 10).reshape(10, 1)
    c = percentile_certificate(y, (0.0, 100.0), sigma=0.1, radius=0.5, alpha=0.001)
    assert order_ranks(10, 0.5, 0.1, 0.5, 0.001) == (0, 11)
    assert float(c.low) == 0.0 and float(c.high) == 100.0
    assert float(c.score) == pytest.approx(30 + 4 * 30 / 9)  # the lower median y₍₅₎


def test_percentile_smoothing_of_brightness_is_tight():
    """Median of f(x + ε) is mean(x); the certified bounds enclose h_{p±}(x) = 100·(mean(x) ± r·w),
    the exact values at x ± r·w, and are close to them for a large n."""
    x, r, sigma = grey(), 0.05, 0.05
    d = DEFENCES.get("median-smoothing")(sigma=sigma, n=4000, radius=r, alpha=0.001, batch=4000)
    c = d.certify(Brightness(), x, seed=5)
    m = 100 * float(x.mean())
    exact_low, exact_high = m - 100 * r * W, m + 100 * r * W
    sample_sd = 100 * sigma * W  # sd of f over the noise
    assert abs(float(c.score) - m) < 0.1 * sample_sd
    assert float(c.low) <= exact_low and float(c.high) >= exact_high
    assert float(c.low) > exact_low - 0.2 * sample_sd and float(c.high) < exact_high + 0.2 * sample_sd
    for sign in (-1, 1):  # the worst perturbations of norm r stay inside
        att = d.certify(Brightness(), x + sign * r * W, seed=5)
        assert float(c.low) <= float(att.score) <= float(c.high)


def test_mean_smoothing_of_a_half_space_is_tight():
    """For the step metric the Lipschitz bound of Φ⁻¹(g) is attained: the exact g(x ± r·w)
    sits inside the certified interval, within the Monte-Carlo margin of its ends."""
    x, sigma, r, alpha, n = grey(), 0.05, 0.02, 0.001, 10_000
    mean_x = float(x.double().mean())
    metric = Step(mean_x - 0.002)
    z = (mean_x - metric.threshold) / (sigma * W)  # Φ⁻¹ of the exact g(x)
    d = DEFENCES.get("randomized-smoothing")(sigma=sigma, n=n, radius=r, alpha=alpha, batch=4000)
    c = d.certify(metric, x, seed=1)
    t = math.sqrt(math.log(2 / alpha) / (2 * n))
    assert abs(float(c.score) / 100 - norm.cdf(z)) < t
    exact_low, exact_high = norm.cdf(z - r / sigma), norm.cdf(z + r / sigma)
    assert float(c.low) / 100 <= exact_low <= float(c.low) / 100 + 0.05
    assert float(c.high) / 100 - 0.05 <= exact_high <= float(c.high) / 100
    # the smoothed scores at the worst perturbations of norm r agree with those exact values
    for sign, exact in ((-1, exact_low), (1, exact_high)):
        att = d.certify(metric, x + sign * r * W, seed=1)
        assert abs(float(att.score) / 100 - exact) < t
        assert float(c.low) <= float(att.score) <= float(c.high)


def test_same_draws_for_clean_and_attacked():
    """Per draw, M(x_a + ε_k) − M(x + ε_k) is the constant 100·mean(δ): both images got the same ε_k."""
    x = grey()
    delta = 0.003 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    d = DEFENCES.get("randomized-smoothing")(sigma=0.05, n=32, batch=5)
    clean, att = d.sample_scores(Brightness(), x, seed=9), d.sample_scores(Brightness(), x + delta, seed=9)
    diff = att - clean
    assert torch.allclose(diff, torch.full_like(diff, 100 * float(delta.mean())), atol=1e-4)
    other = d.sample_scores(Brightness(), x, seed=10)
    assert (other - clean).abs().max() > 50 * diff.std()
    # the chunking is memory only: the same samples for any batch, and batched images get the same draws
    assert torch.equal(DEFENCES.get("randomized-smoothing")(sigma=0.05, n=32, batch=32)
                       .sample_scores(Brightness(), x, seed=9), clean)
    both = d.sample_scores(Brightness(), torch.cat([x, x + delta]), seed=9)
    assert torch.allclose(both, torch.cat([clean, att], 1), atol=1e-5)
    # as an image defence it returns draw 0, the first image the metric scores
    assert float(Brightness().score(d(x, seed=9))) == pytest.approx(float(clean[0, 0]), abs=1e-4)


def test_interval_widens_with_the_radius():
    x = grey()
    for name in ("randomized-smoothing", "median-smoothing"):
        widths = []
        for r in (0.0, 0.01, 0.03, 0.1):
            c = DEFENCES.get(name)(sigma=0.05, n=500, radius=r, alpha=0.01, batch=500).certify(Brightness(), x, 2)
            widths.append(float(c.high - c.low))
        assert widths == sorted(widths) and widths[-1] > 2 * widths[0], (name, widths)


def test_row_columns_say_whether_the_certificate_applies_and_holds():
    x = grey()
    d = DEFENCES.get("median-smoothing")(sigma=0.05, n=500, radius=0.05, alpha=0.01, batch=500)
    metric = Brightness()
    clean = d.certify(metric, x, 3)
    near = x + 0.05 * W  # ‖δ‖₂ = r: covered
    far = (x + 0.2).clamp(0, 1)  # ‖δ‖₂ ≈ 2.8 ≫ r: not covered, and it breaks the interval
    row = certified_columns(clean, d.certify(metric, near, 3), x, near, metric.range)
    assert row["certified_applies"] and row["certified_holds"] and row["certified_note"] == ""
    assert row["perturbation_l2"] == pytest.approx(0.05, rel=1e-4)
    assert row["certified_width"] == pytest.approx(float(clean.high - clean.low) / 100)
    row = certified_columns(clean, d.certify(metric, far, 3), x, far, metric.range)
    assert not row["certified_applies"] and not row["certified_holds"]
    assert "outside the certified radius" in row["certified_note"]
