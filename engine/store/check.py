"""``python main.py check STORE [--salvage OUT]``: what a (damaged) store still holds.

:func:`check_store` runs SQLite's integrity check and counts the readable records of
each table without writing anything. :func:`salvage_store` copies every readable
experiment, run, item and row into a new store; an item whose rows are not all
readable is left out (so a resume computes it again) rather than copied incomplete.
Tables are read by rowid ranges, halved around damaged pages, so one bad page costs
only the records on it.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from engine.core.errors import UsageError

TABLES = ("experiments", "runs", "items", "rows", "views")


@dataclass
class CheckReport:
    """What :func:`check_store` found.

    Attributes:
        path: the store file.
        problems: the integrity check's messages (empty when it passed).
        schema_version: ``PRAGMA user_version`` (None when unreadable).
        readable: readable records per table.
        damaged: tables where some records could not be read.
    """

    path: Path
    problems: list[str] = field(default_factory=list)
    schema_version: int | None = None
    readable: dict[str, int] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.damaged

    def text(self) -> str:
        head = (f"{self.path}: integrity check passed" if self.ok else
                f"{self.path}: DAMAGED — " + "; ".join(self.problems[:3] or ["some records unreadable"]))
        lines = [head, f"schema version: {self.schema_version if self.schema_version is not None else 'unreadable'}"]
        for t in TABLES:
            n = self.readable.get(t)
            if n is None and t == "views" and (self.schema_version or 0) < 3:
                continue  # made before content identity: no views
            mark = " (some records lost)" if t in self.damaged else ""
            lines.append(f"  {t}: {'unreadable' if n is None else f'{n} readable'}{mark}")
        if not self.ok:
            lines.append(f"to copy what is readable: python main.py check {self.path} --salvage NEW.sqlite")
        return "\n".join(lines)


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        from engine.store.db import StoreError

        raise StoreError(f"{path}: no such store file (give results.sqlite or the folder holding it)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    return db


def _ranges(db: sqlite3.Connection, table: str, lo: int, hi: int, lost: list[int]) -> Iterator[sqlite3.Row]:
    """Records with rowid in [lo, hi]; a range that fails is halved until single rowids."""
    try:
        rows = db.execute(f"SELECT rowid AS _rowid_, * FROM {table} WHERE rowid BETWEEN ? AND ?",
                          (lo, hi)).fetchall()
    except sqlite3.DatabaseError:
        if lo >= hi:
            lost.append(lo)
            return
        mid = (lo + hi) // 2
        yield from _ranges(db, table, lo, mid, lost)
        yield from _ranges(db, table, mid + 1, hi, lost)
        return
    yield from rows


def readable_records(db: sqlite3.Connection, table: str) -> tuple[list[dict[str, Any]], bool]:
    """Every readable record of ``table`` (as dicts) and whether some were not readable."""
    try:
        hi = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        hi = max(1, pages) * 64  # no more than this many records fit in the file
    lost: list[int] = []
    out = []
    for r in _ranges(db, table, 1, int(hi), lost):
        d = dict(r)
        d.pop("_rowid_", None)
        out.append(d)
    return out, bool(lost)


def check_store(path: str | Path) -> CheckReport:
    """Integrity check and readable counts of a store (read only)."""
    report = CheckReport(Path(path))
    db = _connect(report.path)
    try:
        try:
            report.schema_version = int(db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:  # not even the header: nothing is readable
            report.problems = [str(exc)]
            return report
        try:
            msgs = [r[0] for r in db.execute("PRAGMA integrity_check(20)")]
            report.problems = [] if msgs == ["ok"] else msgs
        except sqlite3.DatabaseError as exc:
            report.problems = [str(exc)]
        for t in TABLES:
            try:
                records, damaged = readable_records(db, t)
            except sqlite3.DatabaseError:
                continue
            report.readable[t] = len(records)
            if damaged:
                report.damaged.append(t)
    finally:
        db.close()
    return report


def _complete_items(experiments: list[dict], items: list[dict], rows: list[dict],
                    views: list[dict] = ()) -> set[str]:
    """Items that can be copied: failed ones, and done ones with every row readable (a
    unit by content: as many rows as the largest view over it shows; a unit whose rows
    were partly lost is dropped, and a resume computes it again)."""
    import json

    from engine.spec.experiment import Experiment

    expected: dict[str, int] = {}
    for v in views:
        try:
            expected[v["item_id"]] = max(expected.get(v["item_id"], 0), len(json.loads(v["defences"])))
        except (TypeError, ValueError):
            continue
    for e in experiments:
        if e.get("identity"):
            continue
        try:
            for it in Experiment.from_json(e["spec"]).items():
                expected[it.id] = len(it.defences)
        except Exception:  # noqa: BLE001 - an unreadable spec: its items cannot be checked
            continue
    have: dict[str, int] = {}
    for r in rows:
        have[r["item_id"]] = have.get(r["item_id"], 0) + 1
    return {it["item_id"] for it in items
            if it["status"] != "done" or have.get(it["item_id"], 0) == expected.get(it["item_id"], -1)}


def salvage_store(src: str | Path, dst: str | Path) -> dict[str, int]:
    """Copy every readable experiment, run, item and row of ``src`` into a new store ``dst``.

    Returns:
        How many were copied per table, and ``items dropped`` (done items whose rows
        were not all readable: a resume computes them again).

    Raises:
        UsageError: ``dst`` exists already, or is ``src``.
    """
    from engine.store.db import ResultStore

    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise UsageError(f"{dst}: exists already; --salvage needs a new file")
    db = _connect(src)
    try:
        data = {}
        for t in TABLES:
            try:
                data[t] = readable_records(db, t)[0]
            except sqlite3.DatabaseError:
                data[t] = []
    finally:
        db.close()
    exp_ids = {e["id"] for e in data["experiments"]}
    keep = _complete_items(data["experiments"], [i for i in data["items"] if i["experiment_id"] in exp_ids],
                           data["rows"], data.get("views", []))
    chosen = {
        "experiments": data["experiments"],
        "runs": [r for r in data["runs"] if r["experiment_id"] in exp_ids],
        "items": [i for i in data["items"] if i["item_id"] in keep],
        "rows": [r for r in data["rows"] if r["item_id"] in keep],
        "views": [v for v in data.get("views", []) if v["experiment_id"] in exp_ids],
    }
    ResultStore(dst).close()  # the current schema
    out = sqlite3.connect(str(dst))
    try:
        with out:
            for t in TABLES:
                cols = {r[1] for r in out.execute(f"PRAGMA table_info({t})")}
                for rec in chosen[t]:
                    rec = {k: v for k, v in rec.items() if k in cols}
                    out.execute(f"INSERT OR IGNORE INTO {t} ({', '.join(rec)}) VALUES "
                                f"({', '.join('?' for _ in rec)})", tuple(rec.values()))
    finally:
        out.close()
    counts = {t: len(chosen[t]) for t in TABLES}
    counts["items dropped"] = sum(1 for i in data["items"] if i["experiment_id"] in exp_ids) - len(chosen["items"])
    return counts
