"""Randomized (mean) smoothing of the metric, with a certified interval at an L2 radius.

Reference: Cohen, Rosenfeld, Kolter, "Certified Adversarial Robustness via Randomized
Smoothing", ICML 2019; the bounded-regression certificate from Salman et al. 2019
(Lemma 2) and Levine, Singla, Feizi 2020; MSU's defence benchmark (RS).
"""
from __future__ import annotations

from engine.defences._smoothing import MeanSmoothingParams, SmoothingDefence
from engine.defences.base import DEFENCES


@DEFENCES.register("randomized-smoothing")
class RandomizedSmoothing(SmoothingDefence):
    """Smoothed score ``g(x) = E f(x + ε)``, ε ~ N(0, σ² I), f the metric's score clipped to
    its bounds and normalised to [0, 1]; g is estimated by the mean of n seeded samples.

    Certificate: ``Φ⁻¹(g)`` is 1/σ-Lipschitz, so for ``‖δ‖₂ ≤ r`` with confidence 1 − α,
    ``Φ(Φ⁻¹(g_low) − r/σ) ≤ g(x + δ) ≤ Φ(Φ⁻¹(g_high) + r/σ)``, ``g_low/high = ĝ ∓ t``,
    t the Hoeffding (or empirical Bernstein) margin at α/2 per side; mapped back to
    score units (derivation: ``engine/evaluation/certified.py``).

    Args:
        sigma: noise σ (presets 0.12, 0.25, 0.5). n: samples. radius: r. alpha: 1 − confidence.
        bound: ``hoeffding`` | ``bernstein``. batch: samples per metric call (memory only).

    Example:
        >>> rs = RandomizedSmoothing(sigma=0.25, n=100, radius=0.25)
        >>> c = rs.certify(metric, x, seed=3)   # c.score, c.low, c.high: (B,)
    """

    Params = MeanSmoothingParams
    aggregate = "mean"
