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

from engine.evaluation.certified import CERTIFIED_COLUMNS
from engine.evaluation.row import PAIR_COLUMNS, SCORE_COLUMNS
from engine.store import ResultStore

RAW_COLUMNS = [
    "image_name", "clear", "attacked", "defended-clear", "defended-attacked", "mos",
    *PAIR_COLUMNS,
    "attack", "attack_preset", "defence_preset",
    # columns beyond MSU's
    "metric", "defence", *SCORE_COLUMNS,
    "attack_time", "defence_time", "attack_iterations", "iteration_used", "attack_selection",
    "attack_gained", "attack_mode", "eot_draws", "defended-clear_std", "defended-attacked_std",
    "both_defended_abs_gain_std", *CERTIFIED_COLUMNS, "seed", "item_id", "note", "error",
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
SUMMARY_COLUMNS = ["metric", "attack", "attack_preset", "defence", "defence_preset", "score", "value", "count"]


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def _mean(values: Iterable[Any]) -> tuple[float | None, int]:
    nums = [n for n in (_num(v) for v in values) if n is not None]
    return (sum(nums) / len(nums) if nums else None), len(nums)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Long-format summary: for each metric, a block per attack (× preset) × defence
    (× preset) and a ``total`` block over all attacks, each with ``mean_time`` (attack +
    defence seconds per image); certified defences add :data:`CERTIFIED_SCORES`. Rows
    with an error are left out."""
    good = [r for r in rows if not r.get("error")]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    order: list[tuple] = []
    for r in good:
        keys = [(r["metric"], r["attack"], r["attack_preset"], r["defence"], r["defence_preset"]),
                (r["metric"], "total", "all", r["defence"], r["defence_preset"])]
        for k in keys:
            if k not in groups:
                order.append(k)
            groups[k].append(r)
    order.sort(key=lambda k: (k[0], k[1] == "total", k[1], k[2]))
    out = []
    for key in order:
        g = groups[key]
        base = dict(zip(["metric", "attack", "attack_preset", "defence", "defence_preset"], key))
        for score in SUMMARY_SCORES:
            value, n = _mean(r.get(score) for r in g)
            out.append({**base, "score": score, "value": value, "count": n})
        for score in CERTIFIED_SCORES:
            value, n = _mean(r.get(score) for r in g)
            if n:
                out.append({**base, "score": score, "value": value, "count": n})
        value, n = _mean((_num(r.get("attack_time")) or 0.0) + (_num(r.get("defence_time")) or 0.0) for r in g)
        out.append({**base, "score": "mean_time", "value": value, "count": n})
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
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def failure_rows(store: ResultStore, exp_id: str) -> list[dict[str, Any]]:
    """One raw-CSV row per failed item: its identity and the error, no numbers."""
    return [{"image_name": it["image_name"], "metric": it["metric"], "attack": it["attack"],
             "item_id": it["item_id"], "error": f"[{it['stage']}] {it['error']}"}
            for it in store.items(exp_id) if it["status"] == "failed"]


CORRELATION_COLUMNS = ["metric", "attack", "attack_preset", "defence", "defence_preset", "n"] + [
    f"{kind}_{c}" for c in ("clear", "attacked", "defended-clear", "defended-attacked") for kind in ("srocc", "plcc")]


def correlation_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SROCC/PLCC of each score column against MOS, per configuration (rows with a MOS)."""
    from engine.evaluation.correlation import mos_correlations

    return list(mos_correlations(rows).values())


def export_csv(store: ResultStore, out_dir: str | Path, exp_id: str | None = None) -> tuple[Path, Path]:
    """Write ``raw.csv`` and ``summary.csv`` for one experiment (the latest by default),
    and ``correlations.csv`` when the images have MOS values."""
    exp_id = store.resolve(exp_id)
    rows = store.rows(exp_id)
    out_dir = Path(out_dir)
    raw = write_csv_atomic(out_dir / "raw.csv", RAW_COLUMNS, rows + failure_rows(store, exp_id))
    summary = write_csv_atomic(out_dir / "summary.csv", SUMMARY_COLUMNS, summarise(rows))
    if any(r.get("mos") is not None for r in rows):
        write_csv_atomic(out_dir / "correlations.csv", CORRELATION_COLUMNS, correlation_rows(rows))
    return raw, summary
