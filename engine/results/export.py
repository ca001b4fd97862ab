"""CSV export: the raw table (a row per image × metric × attack × defence, MSU's column
names where they exist) and the derived tables of :mod:`engine.evaluation.tables`
(summary, paired, leaderboard, correlations). Files are written atomically (temp file,
then rename)."""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable

from engine.spec.budgets import BUDGET_COLUMNS
from engine.evaluation.certified import CERTIFIED_COLUMNS
from engine.evaluation.columns import PAIR_COLUMNS, SCORE_COLUMNS
from engine.evaluation.eight_bit import EIGHT_BIT_COLUMNS
from engine.evaluation.tables import CORRELATION_COLUMNS, SUMMARY_COLUMNS, correlation_rows, tables
from engine.evaluation.uncertainty import BOOTSTRAP
from engine.store.db import ResultStore

RAW_COLUMNS = [
    "image_name", "clear", "attacked", "defended-clear", "defended-attacked", "mos",
    *PAIR_COLUMNS,
    "attack", "attack_preset", "defence_preset",
    # columns beyond MSU's
    "metric", "defence", *SCORE_COLUMNS,
    "attack_time", "defence_time", "attack_iterations", "attack_queries", "iteration_used", "attack_selection",
    "attack_gained", *EIGHT_BIT_COLUMNS, "attack_mode", "eot_draws", "defended-clear_std", "defended-attacked_std",
    "both_defended_abs_gain_std", *CERTIFIED_COLUMNS, "seed", "item_id", "image_hash", *BUDGET_COLUMNS, "note", "error",
]

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
