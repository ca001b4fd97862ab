"""95 % intervals for means over images: a seeded cluster bootstrap and the t-interval.

A "cluster" is one image: a group's rows are first collected per image (one row per
image in a per-attack block, one per attack in the ``total`` block), and the bootstrap
resamples whole images, so rows of the same image are never treated as independent.
The resampled mean is the mean of every row of the drawn images (the same estimator as
the point mean). The t-interval (what MRB reports) is taken over per-image means.

Both are computed for many scores at once: the bootstrap draws multinomial image weights
``W`` (B × n) once per group and gets every resampled mean as ``(W @ sums) / (W @ counts)``.

With fewer than :data:`MIN_IMAGES` images no interval is given; :data:`NOTE_FEW` says so.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

LEVEL = 0.95
N_BOOT = 2000
MIN_IMAGES = 3
BOOTSTRAP, T_INTERVAL = "bootstrap", "t"
METHODS = (BOOTSTRAP, T_INTERVAL)
NOTE_FEW = f"fewer than {MIN_IMAGES} images: no interval"


@dataclass(frozen=True)
class Interval:
    """A mean with its interval (``low``/``high`` None when there is none, ``note`` says why)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int
    method: str
    note: str = ""


def seed_for(*parts: Any, base: int = 0) -> int:
    """A stable seed from a group's identity, so intervals do not depend on row order."""
    h = hashlib.sha256(repr((base, *parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


@lru_cache(maxsize=8)
def bootstrap_weights(n: int, seed: int, n_boot: int = N_BOOT) -> np.ndarray:
    """``n_boot`` × ``n`` resampling counts (each row sums to ``n``; read-only).

    Cached: every group of a summary with the same number of images and the same seed
    uses the same resamples (each interval is still an ordinary bootstrap interval), so
    a summary of hundreds of groups draws its weights once.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    w = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
    w.flags.writeable = False
    return w


def _percentiles(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    a = (1.0 - level) / 2.0
    q = np.nanquantile if np.isnan(samples).any() else np.quantile  # NaN: a resample without values
    lo, hi = q(samples, [a, 1.0 - a], axis=0)
    return lo, hi


def cluster_bootstrap(sums: np.ndarray, counts: np.ndarray, seed: int, *, n_boot: int = N_BOOT,
                      level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of ratio means, resampling clusters (images).

    Args:
        sums: per-cluster sums of each score, shape n × S (0 where a cluster has no value).
        counts: per-cluster numbers of values, shape n × S.
        seed: the resampling seed.

    Returns:
        (low, high), each of shape S.
    """
    w = bootstrap_weights(sums.shape[0], seed, n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (w @ sums) / (w @ counts)
    return _percentiles(means, level)


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (NaN with fewer than 2 values)."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return math.nan, math.nan
    m, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(n))
    q = float(t.ppf(0.5 + level / 2.0, n - 1))
    return m - q * se, m + q * se


def bootstrap_mean(values: Sequence[float], seed: int, *, n_boot: int = N_BOOT,
                   level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of independent values."""
    x = np.asarray(values, dtype=float)[:, None]
    lo, hi = cluster_bootstrap(x, np.ones_like(x), seed, n_boot=n_boot, level=level)
    return float(lo[0]), float(hi[0])


def mean_intervals(clusters: list[np.ndarray], seed: int, method: str = BOOTSTRAP,
                   level: float = LEVEL, n_boot: int = N_BOOT) -> list[Interval]:
    """Means of S scores with intervals, from per-image arrays of rows × S values (NaN = missing).

    Args:
        clusters: one array per image, shape rows × S.
        seed: bootstrap seed (ignored by the t-interval).
        method: ``bootstrap`` or ``t``.

    Returns:
        One :class:`Interval` per score; ``n`` counts the values behind the mean.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; choose one of {', '.join(METHODS)}")
    if clusters:
        values = np.concatenate(clusters, axis=0)
        ids = np.repeat(np.arange(len(clusters)), [len(c) for c in clusters])
        have = ~np.isnan(values)
        stack = np.zeros((len(clusters), values.shape[1]))
        counts = np.zeros_like(stack)
        np.add.at(stack, ids, np.where(have, values, 0.0))
        np.add.at(counts, ids, have.astype(float))
    else:
        stack = counts = np.zeros((0, 0))
    n_scores = stack.shape[1]
    total_n = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = stack.sum(axis=0) / total_n
    images = (counts > 0).sum(axis=0)
    lows = np.full(n_scores, np.nan)
    highs = np.full(n_scores, np.nan)
    enough = images >= MIN_IMAGES
    if enough.any():
        if method == BOOTSTRAP:
            lo, hi = cluster_bootstrap(stack[:, enough], counts[:, enough], seed, level=level, n_boot=n_boot)
            lows[enough], highs[enough] = lo, hi
        else:
            for j in np.flatnonzero(enough):
                have = counts[:, j] > 0
                lows[j], highs[j] = t_interval(stack[have, j] / counts[have, j], level)
    out = []
    for j in range(n_scores):
        mean = float(means[j]) if total_n[j] else None
        ok = bool(enough[j]) and math.isfinite(lows[j])
        note = "" if ok else (NOTE_FEW if not enough[j] else "no spread to bound")
        if mean is None:
            note = "no values"
        out.append(Interval(mean, float(lows[j]) if ok else None, float(highs[j]) if ok else None,
                            int(total_n[j]), method, note))
    return out


def interval_by_image(values: Sequence[float], images: Sequence[Any], seed: int = 0, method: str = BOOTSTRAP,
                      level: float = LEVEL, n_boot: int = N_BOOT) -> Interval:
    """The mean of ``values`` with its interval, clustering values by their image."""
    by: dict[Any, list[float]] = {}
    for v, im in zip(values, images):
        by.setdefault(im, []).append(float(v))
    clusters = [np.asarray(v, dtype=float)[:, None] for v in by.values()]
    if not clusters:
        return Interval(None, None, None, 0, method, "no values")
    return mean_intervals(clusters, seed, method, level, n_boot)[0]
