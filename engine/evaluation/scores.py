"""Every score the tool reports, in one place.

Notation: x clean, x_a attacked, D the defence, M the metric, r = |best − worst| the
metric's range (MSU bounds), s(·) = min-max scaled score (0 worst, 1 best).

=========================  ============================================================
robust_abs_gain            |M(x) − M(D(x_a))| / r
robust_rel_gain            |M(x) − M(D(x_a))| / (|M(x)| + 1e-6)
nonpurified_abs_gain       |M(x) − M(x_a)| / r               (what the attack achieved)
nonpurified_rel_gain       |M(x) − M(x_a)| / (|M(x)| + 1e-6)
both_defended_abs_gain     |M(D(x)) − M(D(x_a))| / r
both_defended_rel_gain     |M(D(x)) − M(D(x_a))| / (|M(D(x))| + 1e-6)
gain_removed               1 − robust_abs_gain / nonpurified_abs_gain  (NaN if no gain)
quality_score              (SSIM + PSNR/80) / 2 between x and D(x_a)  (prototype)
quality_score_clear        the same between x and D(x)
similarity_score           SSIM + PSNR/40 between x and D(x_a)        (benchmark)
geometry_aware_quality     quality_score between D(x) and D(x_a): for geometric
                           defences (flip, crop, rotate), which never undo geometry
robustness                 log10( max(1 − s, s) / (|s − s'| + ε) ), s = s(M(x)),
                           s' = s(M(D(x_a))); higher is more robust (AAAI-24), ε = 1e-6
nonpurified_robustness     the same with s' = s(M(x_a))
norm_clear                 s(M(x)); norm_defended-attacked: s(M(D(x_a)))
mrb_abs_gain               s' − s, s' = s(M(D(x_a))): MRB's MinMax-normalised absolute
                           gain, signed (> 0: the score moved toward "better")
mrb_rel_gain               (s' − s) / (|s| + 1e-6): MinMax-normalised relative gain
=========================  ============================================================

Per group of images (``engine.evaluation.distribution``, in the summary):

=========================  ============================================================
wasserstein                W1 between the distributions of s and s' over the group's
                           images, signed by the direction of mean(s') − mean(s)
energy                     the energy distance between them (scipy's definition,
                           √(2∫(F − G)²)), signed the same way
srocc_clear_defended-clear SROCC between M(x) and M(D(x)) (Guardians: does the defence
                           keep the metric's ranking of clean images?)
=========================  ============================================================

The relative gains divide by |M(x)| rather than MSU's M(x) so that metrics with negative
scores (BRISQUE, Linearity) still give non-negative gains. PSNR is capped at 80 dB, so
the quality score of an unchanged image is exactly 1.
"""
from __future__ import annotations

import math

REL_EPS = 1e-6
ROBUSTNESS_EPS = 1e-6


def abs_gain(reference: float, value: float, score_range: float) -> float:
    return abs(reference - value) / score_range


def rel_gain(reference: float, value: float) -> float:
    return abs(reference - value) / (abs(reference) + REL_EPS)


def quality_score(ssim: float, psnr: float) -> float:
    """The prototype's visual-quality score: (SSIM + PSNR/80) / 2."""
    return (ssim + psnr / 80.0) / 2.0


def similarity_score(ssim: float, psnr: float) -> float:
    """The defence benchmark's similarity: SSIM + PSNR/40."""
    return ssim + psnr / 40.0


def scaled(score: float, bounds: tuple[float, float]) -> float:
    """Min-max scaling with (worst, best) bounds: 0 = worst, 1 = best."""
    worst, best = bounds
    return (score - worst) / (best - worst)


def normalised_abs_gain(s_clean: float, s_attacked: float) -> float:
    """MRB's MinMax-normalised absolute gain (signed: > 0 toward "better")."""
    return s_attacked - s_clean


def normalised_rel_gain(s_clean: float, s_attacked: float) -> float:
    """MRB's MinMax-normalised relative gain, ``(s' − s) / (|s| + 1e-6)``."""
    return (s_attacked - s_clean) / (abs(s_clean) + REL_EPS)


def robustness_term(clean: float, attacked: float, bounds: tuple[float, float]) -> float:
    """One image's term of the AAAI-24 robustness score (higher = more robust)."""
    s, s2 = scaled(clean, bounds), scaled(attacked, bounds)
    return math.log10(max(1.0 - s, s) / (abs(s - s2) + ROBUSTNESS_EPS))


def gain_removed(robust_abs: float, nonpurified_abs: float) -> float:
    """Share of the attack's gain that the defence removed (1 = all, 0 = none)."""
    if nonpurified_abs <= 0:
        return float("nan")
    return 1.0 - robust_abs / nonpurified_abs


def attack_gained(clean: float, attacked: float, lower_better: bool) -> bool:
    """Whether the attack moved the score toward "better" at all."""
    return (clean - attacked) > 0 if lower_better else (attacked - clean) > 0
