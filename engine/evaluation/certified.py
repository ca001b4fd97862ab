"""Certified intervals of a smoothed score at an L2 radius, and their row columns.

The base function is the metric after the defence's denoiser, with its score clipped
to the metric's bounds and normalised, ``f(z) = (clip(M(D(z)), lo, hi) − lo) / (hi − lo)``
∈ [0, 1] (``lo``/``hi``: the smaller/larger of the metric's MSU bounds; the clamp of a
noisy image to [0, 1] and the denoiser are part of f). ``ε ~ N(0, σ² I)`` over the image
(3·H·W values in [0, 1] units); ``‖δ‖₂`` is taken over the same values.

**Mean smoothing** (randomized smoothing for a bounded regression output; Salman et al.
2019, Lemma 2; Levine, Singla, Feizi 2020): ``g(x) = E f(x + ε)``. For any f with values
in [0, 1], ``Φ⁻¹(g(x))`` is ``1/σ``-Lipschitz in x, so for ``‖δ‖₂ ≤ r``::

    Φ(Φ⁻¹(g(x)) − r/σ)  ≤  g(x + δ)  ≤  Φ(Φ⁻¹(g(x)) + r/σ).

g is estimated by the mean ĝ of n samples; with probability ≥ 1 − α,
``g(x) ∈ [ĝ − t, ĝ + t]`` (each side α/2), with

- Hoeffding: ``t = sqrt(ln(2/α) / (2n))``;
- empirical Bernstein (Maurer & Pontil 2009, Thm 4): ``t = sqrt(2 V ln(4/α) / n) +
  7 ln(4/α) / (3 (n − 1))``, V the unbiased sample variance (tighter when the scores
  vary little and n is large).

Φ and Φ⁻¹ are monotone, so the certified interval is
``[Φ(Φ⁻¹(g_low) − r/σ), Φ(Φ⁻¹(g_high) + r/σ)]`` with ``g_low, g_high`` the confidence
bounds clipped to [0, 1] (Φ⁻¹(0) = −∞ gives the bound lo), mapped back to score units by
``lo + (hi − lo)·g``.

**Percentile smoothing** (Chiang, Curry, Abdelkader, Kumar, Dickerson, Goldstein,
"Detection as Regression: Certified Object Detection by Median Smoothing", NeurIPS 2020,
Thm 1): ``h_p(x)`` = the p-th percentile of f(x + ε). For ``‖δ‖₂ ≤ r``,
``h_{p−}(x) ≤ h_p(x + δ) ≤ h_{p+}(x)`` with ``p± = Φ(Φ⁻¹(p) ± r/σ)``. From the sorted
samples ``y₍₁₎ ≤ … ≤ y₍ₙ₎``: the upper bound is ``y₍ₖ₊₎`` with ``k₊`` the smallest k such
that ``P(Bin(n, p₊) ≤ k − 1) ≥ 1 − α/2`` (then ``y₍ₖ₊₎ ≥ h_{p+}`` with that
probability); the lower bound is ``y₍ₖ₋₎`` with ``k₋`` the largest k such that
``P(Bin(n, p₋) ≥ k) ≥ 1 − α/2``. A rank outside 1…n gives the bound hi (lo). The
smoothed score is the sample p-quantile (lower median for p = 0.5, ``y₍⌈np⌉₎``).

Both certificates hold jointly for clean and attacked images at confidence 1 − α per
image; they bound the *expected* smoothed score of the perturbed image, and the row
compares the attacked image's *estimate* with the clean interval (``certified_holds``),
which the same noise draws for both make a tight comparison.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

BOUNDS = ("hoeffding", "bernstein")
#: relative slack on ‖δ‖₂ ≤ r for float32 rounding (a perturbation projected onto the ball)
L2_TOLERANCE = 1e-5


@dataclass
class Certificate:
    """A smoothed score and its certified interval at an L2 radius (per image).

    Attributes:
        score: the smoothed score :math:`(B,)`, metric units.
        low, high: the certified interval at ``radius`` :math:`(B,)`, metric units.
        radius: the L2 radius r the interval is stated for.
        samples: the n base scores :math:`(n, B)` (metric units, clipped to the bounds).
    """

    score: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    radius: float
    samples: torch.Tensor


def score_limits(bounds: tuple[float, float]) -> tuple[float, float]:
    """(lo, hi) of a metric's (worst, best) bounds, whichever order they come in."""
    lo, hi = min(bounds), max(bounds)
    if not hi > lo:
        raise ValueError(f"certification needs a metric with distinct bounds, got {bounds}")
    return float(lo), float(hi)


def mean_margin(y: torch.Tensor, alpha: float, bound: str = "hoeffding") -> torch.Tensor:
    """Half-width t of the two-sided 1 − α confidence interval of the mean of [0, 1] samples.

    Args:
        y: samples :math:`(n, B)` in [0, 1].
        alpha: total miss probability (α/2 each side).
        bound: ``hoeffding`` or ``bernstein`` (empirical Bernstein, needs n ≥ 2).

    Returns:
        :math:`(B,)`.
    """
    n = y.shape[0]
    if bound == "hoeffding":
        return torch.full(y.shape[1:], math.sqrt(math.log(2 / alpha) / (2 * n)), dtype=y.dtype)
    if bound == "bernstein":
        if n < 2:
            raise ValueError("the empirical Bernstein bound needs at least 2 samples")
        log = math.log(4 / alpha)
        return torch.sqrt(2 * y.var(0, correction=1) * log / n) + 7 * log / (3 * (n - 1))
    raise ValueError(f"unknown confidence bound {bound!r}; known: {', '.join(BOUNDS)}")


def mean_certificate(scores: torch.Tensor, bounds: tuple[float, float], sigma: float, radius: float,
                     alpha: float, bound: str = "hoeffding") -> Certificate:
    """Mean smoothing: ĝ and its certified interval at ``radius`` (see the module docstring).

    Args:
        scores: base scores :math:`(n, B)`, metric units (clipped to the bounds here).
        bounds: the metric's (worst, best).
        sigma: the noise σ; radius: r; alpha: 1 − confidence; bound: hoeffding | bernstein.
    """
    lo, hi = score_limits(bounds)
    s = scores.double().clamp(lo, hi)
    y = (s - lo) / (hi - lo)
    g = y.mean(0)
    t = mean_margin(y, alpha, bound)
    shift = radius / sigma
    g_low = torch.special.ndtr(torch.special.ndtri((g - t).clamp(0, 1)) - shift)
    g_high = torch.special.ndtr(torch.special.ndtri((g + t).clamp(0, 1)) + shift)
    to_score = lambda v: (lo + (hi - lo) * v).float()  # noqa: E731
    return Certificate(to_score(g), to_score(g_low), to_score(g_high), float(radius), s.float())


def order_ranks(n: int, p: float, sigma: float, radius: float, alpha: float) -> tuple[int, int]:
    """1-based ranks (k₋, k₊) of the order statistics bounding ``h_{p∓}`` at confidence 1 − α/2
    each; 0 means "below every sample" (bound lo), n + 1 "above every sample" (bound hi)."""
    from scipy.stats import binom, norm

    shift = radius / sigma
    p_plus = float(norm.cdf(norm.ppf(p) + shift))
    p_minus = float(norm.cdf(norm.ppf(p) - shift))
    ks = torch.arange(1, n + 1).numpy()
    # upper: smallest k with P(Bin(n, p+) <= k-1) >= 1 - α/2
    ok_up = binom.cdf(ks - 1, n, p_plus) >= 1 - alpha / 2
    k_plus = int(ks[ok_up][0]) if ok_up.any() else n + 1
    # lower: largest k with P(Bin(n, p-) >= k) = 1 - cdf(k-1) >= 1 - α/2
    ok_low = binom.sf(ks - 1, n, p_minus) >= 1 - alpha / 2
    k_minus = int(ks[ok_low][-1]) if ok_low.any() else 0
    return k_minus, k_plus


def percentile_certificate(scores: torch.Tensor, bounds: tuple[float, float], sigma: float, radius: float,
                           alpha: float, p: float = 0.5) -> Certificate:
    """Percentile (median for p = 0.5) smoothing with order-statistic bounds.

    Args:
        scores: base scores :math:`(n, B)`, metric units (clipped to the bounds here).
        bounds: the metric's (worst, best); sigma: σ; radius: r; alpha: 1 − confidence.
        p: the percentile in (0, 1).
    """
    lo, hi = score_limits(bounds)
    s = scores.float().clamp(lo, hi)
    srt = s.sort(0).values
    n = s.shape[0]
    k_minus, k_plus = order_ranks(n, p, sigma, radius, alpha)
    est = srt[max(1, math.ceil(n * p)) - 1]
    low = srt[k_minus - 1] if k_minus >= 1 else torch.full_like(est, lo)
    high = srt[k_plus - 1] if k_plus <= n else torch.full_like(est, hi)
    return Certificate(est, low, high, float(radius), s)


def certified_columns(clean: Certificate, attacked: Certificate, x: torch.Tensor, x_adv: torch.Tensor,
                      score_range: float, index: int = 0) -> dict[str, Any]:
    """The row columns of a certified defence for image ``index`` of the batch.

    Columns: ``defended-clear_certified_low/high`` and ``defended-attacked_certified_low/high``
    (the intervals of the clean and the attacked image), ``certified_radius`` (r),
    ``certified_width`` (clean interval width / metric range), ``perturbation_l2``
    (‖x_a − x‖₂), ``certified_applies`` (‖x_a − x‖₂ ≤ r: the certificate covers this
    attack), ``certified_holds`` (the attacked smoothed score lies in the clean
    interval) and ``certified_note`` (what a failure means).
    """
    i = index
    lo, hi = float(clean.low[i]), float(clean.high[i])
    s_att = float(attacked.score[i])
    l2 = float((x_adv[i].double() - x[i].double()).norm())
    applies = l2 <= clean.radius * (1 + L2_TOLERANCE)
    holds = lo <= s_att <= hi
    note = ""
    if not holds:
        note = (f"perturbation ‖δ‖₂ = {l2:.4g} > r = {clean.radius:g}: outside the certified radius, "
                "so the certificate does not apply" if not applies else
                f"certificate violated at ‖δ‖₂ = {l2:.4g} ≤ r = {clean.radius:g}: a Monte-Carlo miss, "
                "possible only with small probability (the interval holds at confidence 1 − α)")
    return {
        "defended-clear_certified_low": lo, "defended-clear_certified_high": hi,
        "defended-attacked_certified_low": float(attacked.low[i]),
        "defended-attacked_certified_high": float(attacked.high[i]),
        "certified_radius": clean.radius, "certified_width": (hi - lo) / score_range,
        "perturbation_l2": l2, "certified_applies": applies, "certified_holds": holds,
        "certified_note": note,
    }


CERTIFIED_COLUMNS = [
    "defended-clear_certified_low", "defended-clear_certified_high",
    "defended-attacked_certified_low", "defended-attacked_certified_high",
    "certified_radius", "certified_width", "perturbation_l2", "certified_applies", "certified_holds",
    "certified_note",
]
