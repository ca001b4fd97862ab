"""The derived tables of an experiment's rows: the long-format summary (means with 95 %
intervals per attack × defence and a ``total`` block), the paired differences, the
leaderboard and the MOS correlations. Pure functions of the rows; writing them is
:mod:`engine.results.export`'s job."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from engine.evaluation.columns import SCORE_COLUMNS
from engine.evaluation.uncertainty import BOOTSTRAP, mean_intervals

#: what the summary averages (per group), in this order
SUMMARY_SCORES = [
    "clear", "attacked", "defended-clear", "defended-attacked",
    *SCORE_COLUMNS,
    "ssim_clear_defended-attacked", "psnr_clear_defended-attacked",
    "ssim_clear_attacked", "psnr_clear_attacked",
]
#: summarised only for groups that have them (the certified defences): mean clean-interval
#: width / range, and the share of images whose attacked smoothed score stays in it
CERTIFIED_SCORES = ["certified_width", "certified_holds"]
GROUP_COLUMNS = ["metric", "attack", "attack_preset", "defence", "defence_preset", "budget"]
SUMMARY_COLUMNS = [*GROUP_COLUMNS[:5], "score", "value", "count", "ci_low", "ci_high", "ci_method", "ci_note",
                   "budget"]


#: the 8-bit delivery scores (:mod:`engine.evaluation.eight_bit`): the mean share of the
#: gain kept, and the share of attacked images whose gain disappears when saved
EIGHT_BIT_SCORES = ["gain_kept_8bit", "gain_lost_8bit"]


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def _group_rows(rows: list[dict[str, Any]]) -> tuple[dict[tuple, list[dict]], list[tuple]]:
    """Rows without errors by (metric, attack, attack_preset, defence, defence_preset, budget),
    plus a ``total`` block over all attacks; keys in summary order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    order: list[tuple] = []
    for r in rows:
        if r.get("error"):
            continue
        b = r.get("budget")
        keys = [(r["metric"], r["attack"], r["attack_preset"], r["defence"], r["defence_preset"], b),
                (r["metric"], "total", "all", r["defence"], r["defence_preset"], b)]
        for k in keys:
            if k not in groups:
                order.append(k)
            groups[k].append(r)
    order.sort(key=lambda k: (k[0], str(k[5] or ""), k[1] == "total", k[1], k[2]))
    return groups, order


def _row_time(r: dict[str, Any]) -> float:
    return (_num(r.get("attack_time")) or 0.0) + (_num(r.get("defence_time")) or 0.0)


def _per_image(g: list[dict[str, Any]], columns: list[str]) -> list[np.ndarray]:
    """One rows × columns array per image (NaN where a value is missing)."""
    by_image: dict[Any, list[list[float]]] = defaultdict(list)
    for r in g:
        vals = [_row_time(r) if c == "mean_time" else _num(r.get(c)) for c in columns]
        by_image[r.get("image_name")].append([math.nan if v is None else v for v in vals])
    return [np.asarray(v, dtype=float) for v in by_image.values()]


def summarise(rows: list[dict[str, Any]], ci_method: str = BOOTSTRAP, seed: int = 0) -> list[dict[str, Any]]:
    """Long-format summary: for each metric, a block per attack (× preset) × defence
    (× preset) and a ``total`` block over all attacks, each with ``mean_time`` (attack +
    defence seconds per image). Rows with an error are left out.

    Every mean has a 95 % interval (``ci_low``, ``ci_high``) over images
    (:mod:`engine.evaluation.uncertainty`): a seeded cluster bootstrap (``ci_method``
    ``bootstrap``, default) or the t-interval (``t``); ``ci_note`` says why one is missing.
    The distribution scores (:mod:`engine.evaluation.distribution`) follow the means.
    """
    from engine.evaluation.distribution import group_scores

    groups, order = _group_rows(rows)
    columns = [*SUMMARY_SCORES, "mean_time"]
    out = []
    for key in order:
        g = groups[key]
        base = dict(zip(GROUP_COLUMNS, key))
        ivs = mean_intervals(_per_image(g, columns), seed, ci_method)
        for score, iv in zip(columns, ivs):
            out.append({**base, "score": score, "value": iv.mean, "count": iv.n, "ci_low": iv.low,
                        "ci_high": iv.high, "ci_method": iv.method, "ci_note": iv.note})
        out.extend({**base, **s} for s in group_scores(g, seed, method=ci_method))
        cert = [c for c in (*CERTIFIED_SCORES, *EIGHT_BIT_SCORES) if any(_num(r.get(c)) is not None for r in g)]
        for score, iv in zip(cert, mean_intervals(_per_image(g, cert), seed, ci_method) if cert else []):
            out.append({**base, "score": score, "value": iv.mean, "count": iv.n, "ci_low": iv.low,
                        "ci_high": iv.high, "ci_method": iv.method, "ci_note": iv.note})
    return out


CORRELATION_COLUMNS = ["metric", "attack", "attack_preset", "defence", "defence_preset", "n"] + [
    f"{kind}_{c}" for c in ("clear", "attacked", "defended-clear", "defended-attacked") for kind in ("srocc", "plcc")
] + ["srocc_clear_defended-clear"]


def correlation_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SROCC/PLCC of each score column against MOS, per configuration (rows with a MOS)."""
    from engine.evaluation.correlation import mos_correlations

    return list(mos_correlations(rows).values())


def tables(rows: list[dict[str, Any]], ci_method: str = BOOTSTRAP) -> dict[str, list[dict[str, Any]]]:
    """The derived tables of one experiment's rows: ``summary``, ``paired``, ``leaderboard``."""
    from engine.evaluation.leaderboard import leaderboard
    from engine.evaluation.paired import paired_rows

    summary = summarise(rows, ci_method) if rows else []
    return {"summary": summary, "paired": paired_rows(rows, ci_method=ci_method), "leaderboard": leaderboard(summary)}


