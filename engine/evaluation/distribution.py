"""Group-level scores: distances between score distributions (MRB) and clean-ranking SROCC.

For a group of rows (one configuration, one or more attacks), the clean normalised scores
s = s(M(x)) and the attacked ones s' = s(M(D(x_a))) form two empirical distributions.
MRB reports the Wasserstein (W1) and energy distances between them, signed by the
direction of the shift (positive: the attack moved scores toward "better").

Intervals: a seeded bootstrap over images. Rows are sorted once; each resample only
re-weights them (an image drawn k times weighs k), so every distance of every resample is
one cumulative sum over a B × 2N matrix of weighted CDF steps.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.evaluation.correlation import CLEAN_DEFENDED as CLEAN_SROCC
from engine.evaluation.uncertainty import LEVEL, MIN_IMAGES, NOTE_FEW, bootstrap_weights

N_BOOT_DIST = 500  # each resample costs a pass over 2 × rows; 500 keep percentiles stable to ~1 %
DIST_SCORES = ("wasserstein", "energy")


def _cdf_gaps(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|F − G| on each gap between sorted pooled values, and the gap widths.

    Args:
        a, b: samples (length n, m); wa, wb: weights, shape K × n and K × m.

    Returns:
        (K × (n+m−1) differences of the weighted CDFs, the n+m−1 gap widths).
    """
    values = np.concatenate([a, b])
    order = np.argsort(values, kind="stable")
    gaps = np.diff(values[order])
    w = np.concatenate([wa / wa.sum(axis=1, keepdims=True), -wb / wb.sum(axis=1, keepdims=True)], axis=1)
    diff = np.cumsum(w[:, order], axis=1)[:, :-1]
    return diff, gaps


def distances(a: Sequence[float], b: Sequence[float], wa: np.ndarray | None = None,
              wb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unsigned W1 and energy distances between (weighted) samples ``a`` and ``b``.

    Matches ``scipy.stats.wasserstein_distance`` and ``scipy.stats.energy_distance``.

    Returns:
        (wasserstein, energy), each of shape K (K = number of weight rows, 1 without weights).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    wa = np.ones((1, len(a))) if wa is None else np.atleast_2d(wa)
    wb = np.ones((1, len(b))) if wb is None else np.atleast_2d(wb)
    diff, gaps = _cdf_gaps(a, b, wa, wb)
    return np.abs(diff) @ gaps, np.sqrt(2.0 * (diff ** 2) @ gaps)


def signed_distances(a: Sequence[float], b: Sequence[float], wa: np.ndarray | None = None,
                     wb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`distances` signed by the weighted mean shift ``mean(b) − mean(a)``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    wa = np.ones((1, len(a))) if wa is None else np.atleast_2d(wa)
    wb = np.ones((1, len(b))) if wb is None else np.atleast_2d(wb)
    shift = (wb @ b) / wb.sum(axis=1) - (wa @ a) / wa.sum(axis=1)
    sign = np.where(shift < 0, -1.0, 1.0)
    w1, en = distances(a, b, wa, wb)
    return sign * w1, sign * en


def _pairs(rows: list[dict[str, Any]], x: str, y: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite (x, y) pairs of the rows and each pair's image index."""
    images: dict[Any, int] = {}
    xs, ys, idx = [], [], []
    for r in rows:
        vx, vy = r.get(x), r.get(y)
        if isinstance(vx, (int, float)) and isinstance(vy, (int, float)) and math.isfinite(vx) and math.isfinite(vy):
            xs.append(float(vx))
            ys.append(float(vy))
            idx.append(images.setdefault(r.get("image_name"), len(images)))
    return np.asarray(xs), np.asarray(ys), np.asarray(idx, dtype=int)


def _base(score: str, method: str) -> dict[str, Any]:
    return {"score": score, "value": None, "count": 0, "ci_low": None, "ci_high": None,
            "ci_method": method, "ci_note": ""}


def group_scores(rows: list[dict[str, Any]], seed: int, n_boot: int = N_BOOT_DIST,
                 level: float = LEVEL, method: str = "bootstrap") -> list[dict[str, Any]]:
    """Summary rows (``score``, ``value``, ``count``, ``ci_*``) of the group-level scores.

    Args:
        rows: the group's rows (errors already left out).
        seed: bootstrap seed.
        method: ``bootstrap``, or ``t`` (the summary's t-interval run: a distance has no
            t-interval, so none is computed, which also skips the bootstrap's cost).

    Returns:
        ``wasserstein`` and ``energy`` between ``norm_clear`` and ``norm_defended-attacked``
        (bootstrap interval over images), and ``srocc_clear_defended-clear`` (no interval).
    """
    from engine.evaluation.correlation import srocc

    a, b, idx = _pairs(rows, "norm_clear", "norm_defended-attacked")
    out = [_base(s, "bootstrap") for s in DIST_SCORES]
    if len(a):
        w1, en = signed_distances(a, b)
        n_img = int(idx.max()) + 1
        for row, v in zip(out, (w1[0], en[0])):
            row.update(value=float(v), count=len(a))
        if method != "bootstrap":
            for row in out:
                row.update(ci_method="", ci_note="distance: bootstrap interval only (--ci bootstrap)")
        elif n_img >= MIN_IMAGES:
            w = bootstrap_weights(n_img, seed, n_boot)[:, idx]
            bw1, ben = signed_distances(a, b, w, w)
            q = (1.0 - level) / 2.0
            for row, s in zip(out, (bw1, ben)):
                row.update(ci_low=float(np.quantile(s, q)), ci_high=float(np.quantile(s, 1.0 - q)))
        else:
            for row in out:
                row["ci_note"] = NOTE_FEW
    else:
        for row in out:
            row["ci_note"] = "no values"
    x, y, _ = _pairs(rows, "clear", "defended-clear")
    sr = _base(CLEAN_SROCC, "")
    if len(x):
        v = srocc(list(x), list(y))
        sr.update(value=None if math.isnan(v) else v, count=len(x),
                  ci_note="correlation: no interval" if not math.isnan(v) else "fewer than 3 images or constant")
    else:
        sr["ci_note"] = "no values"
    out.append(sr)
    return out
