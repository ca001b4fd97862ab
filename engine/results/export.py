"""CSV export: the raw table (a row per image × metric × attack × defence, MSU's column
names where they exist) and the long-format summary (means per attack × defence and a
``total`` block). Files are written atomically (temp file, then rename)."""
from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from engine.evaluation.budgets import BUDGET_COLUMNS
from engine.evaluation.certified import CERTIFIED_COLUMNS
from engine.evaluation.row import PAIR_COLUMNS, SCORE_COLUMNS
from engine.evaluation.uncertainty import BOOTSTRAP, mean_intervals
from engine.store.db import ResultStore

RAW_COLUMNS = [
    "image_name", "clear", "attacked", "defended-clear", "defended-attacked", "mos",
    *PAIR_COLUMNS,
    "attack", "attack_preset", "defence_preset",
    # columns beyond MSU's
    "metric", "defence", *SCORE_COLUMNS,
    "attack_time", "defence_time", "attack_iterations", "attack_queries", "iteration_used", "attack_selection",
    "attack_gained", "attack_mode", "eot_draws", "defended-clear_std", "defended-attacked_std",
    "both_defended_abs_gain_std", *CERTIFIED_COLUMNS, "seed", "item_id", *BUDGET_COLUMNS, "note", "error",
]

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
        cert = [c for c in CERTIFIED_SCORES if any(_num(r.get(c)) is not None for r in g)]
        for score, iv in zip(cert, mean_intervals(_per_image(g, cert), seed, ci_method) if cert else []):
            out.append({**base, "score": score, "value": iv.mean, "count": iv.n, "ci_low": iv.low,
                        "ci_high": iv.high, "ci_method": iv.method, "ci_note": iv.note})
    return out


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return v


def write_csv_atomic(path: str | Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: _fmt(r.get(c)) for c in columns})
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half file behind
        raise
    return path


def failure_rows(store: ResultStore, exp_id: str) -> list[dict[str, Any]]:
    """One raw-CSV row per failed item: its identity and the error, no numbers."""
    return [{"image_name": it["image_name"], "metric": it["metric"], "attack": it["attack"],
             "item_id": it["item_id"], "error": f"[{it['stage']}] {it['error']}"}
            for it in store.items(exp_id) if it["status"] == "failed"]


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


def export_csv(store: ResultStore, out_dir: str | Path, exp_id: str | None = None,
               ci_method: str = BOOTSTRAP, derived: dict[str, list[dict[str, Any]]] | None = None,
               ) -> tuple[Path, Path]:
    """Write ``raw.csv``, ``summary.csv`` (means with intervals), ``paired.csv`` (defence
    A − defence B on the same items) and ``leaderboard.csv`` for one experiment (the latest
    by default), and ``correlations.csv`` when the images have MOS values.

    Args:
        derived: the :func:`tables` of these rows when already computed (the report's).
    """
    from engine.evaluation.leaderboard import LEADERBOARD_COLUMNS
    from engine.evaluation.paired import PAIRED_COLUMNS

    exp_id = store.resolve(exp_id)
    rows = store.rows(exp_id)
    out_dir = Path(out_dir)
    t = derived if derived is not None else tables(rows, ci_method)
    raw = write_csv_atomic(out_dir / "raw.csv", RAW_COLUMNS, rows + failure_rows(store, exp_id))
    summary = write_csv_atomic(out_dir / "summary.csv", SUMMARY_COLUMNS, t["summary"])
    write_csv_atomic(out_dir / "paired.csv", PAIRED_COLUMNS, t["paired"])
    write_csv_atomic(out_dir / "leaderboard.csv", LEADERBOARD_COLUMNS, t["leaderboard"])
    if any(r.get("mos") is not None for r in rows):
        write_csv_atomic(out_dir / "correlations.csv", CORRELATION_COLUMNS, correlation_rows(rows))
    return raw, summary
