"""Paired comparisons of two defences on the same items.

For defences A and B evaluated on the same (image, attack) pairs, the per-pair
difference ``score(A) − score(B)`` (remaining gain by default) has a mean and a 95 %
interval over images (the same bootstrap / t-interval as the summary). Because both
defences see the same images, the image-to-image spread cancels: the paired interval is
much narrower than comparing two separate intervals.

``verdict`` reads the interval: ``A lower`` / ``B lower`` when it excludes 0, else
``no clear difference`` (or ``no interval``).
"""
from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np

from engine.evaluation.uncertainty import BOOTSTRAP, mean_intervals

PAIRED_COLUMNS = ["metric", "attack", "attack_preset", "defence_a", "defence_a_preset", "defence_b",
                  "defence_b_preset", "score", "mean_diff", "ci_low", "ci_high", "ci_method", "ci_note",
                  "n", "verdict"]
PAIRED_SCORES = ("robust_abs_gain",)


def _finite(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def verdict(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "no interval"
    if high < 0:
        return "A lower"
    if low > 0:
        return "B lower"
    return "no clear difference"


def paired_rows(rows: list[dict[str, Any]], scores: tuple[str, ...] = PAIRED_SCORES,
                ci_method: str = BOOTSTRAP, seed: int = 0) -> list[dict[str, Any]]:
    """Every pair of defences within a metric × attack block (and over all attacks).

    Args:
        rows: raw rows (rows with an error are left out).
        scores: which score columns to difference.

    Returns:
        Rows with :data:`PAIRED_COLUMNS`; an (image, attack) counts only where both
        defences have a finite value.
    """
    # (metric, attack, attack_preset) block -> defence -> (image, attack, preset) -> row
    blocks: dict[tuple, dict[tuple, dict[tuple, dict]]] = {}
    for r in rows:
        if r.get("error"):
            continue
        d = (r.get("defence"), r.get("defence_preset"))
        item = (r.get("image_name"), r.get("attack"), r.get("attack_preset"))
        for block in ((r.get("metric"), r.get("attack"), r.get("attack_preset")),
                      (r.get("metric"), "total", "all")):
            blocks.setdefault(block, {}).setdefault(d, {})[item] = r
    out = []
    for block in sorted(blocks, key=lambda k: (str(k[0]), k[1] == "total", str(k[1]), str(k[2]))):
        defences = blocks[block]
        for da, db in combinations(list(defences), 2):
            ra, rb = defences[da], defences[db]
            common = [k for k in ra if k in rb]
            per_image: dict[Any, list[list[float]]] = {}
            for k in common:
                diffs = []
                for s in scores:
                    va, vb = _finite(ra[k].get(s)), _finite(rb[k].get(s))
                    diffs.append(va - vb if va is not None and vb is not None else math.nan)
                per_image.setdefault(k[0], []).append(diffs)
            clusters = [np.asarray(v, float) for v in per_image.values()]
            if not clusters:
                continue
            ivs = mean_intervals(clusters, seed, ci_method)
            for s, iv in zip(scores, ivs):
                out.append({"metric": block[0], "attack": block[1], "attack_preset": block[2],
                            "defence_a": da[0], "defence_a_preset": da[1], "defence_b": db[0],
                            "defence_b_preset": db[1], "score": s, "mean_diff": iv.mean, "ci_low": iv.low,
                            "ci_high": iv.high, "ci_method": iv.method, "ci_note": iv.note, "n": iv.n,
                            "verdict": verdict(iv.low, iv.high)})
    return out
