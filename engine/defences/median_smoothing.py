"""Median (percentile) smoothing of the metric, with order-statistic certified bounds.

Reference: Chiang et al., "Detection as Regression: Certified Object Detection by Median
Smoothing", NeurIPS 2020; MSU's defence benchmark (MS).
"""
from __future__ import annotations

from engine.defences._smoothing import MedianSmoothingParams, SmoothingDefence
from engine.defences.base import DEFENCES


@DEFENCES.register("median-smoothing")
class MedianSmoothing(SmoothingDefence):
    """Smoothed score ``h_p(x)`` = the p-th percentile (p = 0.5: the median) of the
    metric's score of ``x + ε``, ε ~ N(0, σ² I), estimated from n seeded samples.

    Certificate: for ``‖δ‖₂ ≤ r``, ``h_{p−}(x) ≤ h_p(x + δ) ≤ h_{p+}(x)`` with
    ``p± = Φ(Φ⁻¹(p) ± r/σ)``; the bounds are the order statistics whose ranks bound p±
    at binomial confidence 1 − α/2 each (``engine/evaluation/certified.py``). Needs no
    bounded score, but a rank beyond the n samples gives the metric's bound, so n must
    grow with r/σ for a finite-width interval.

    Args:
        sigma: noise σ (presets 0.12, 0.25, 0.5). n: samples. radius: r. alpha: 1 − confidence.
        percentile: p. batch: samples per metric call (memory only).
    """

    Params = MedianSmoothingParams
    aggregate = "median"
