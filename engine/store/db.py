"""Crash-safe SQLite result store (the embedded default).

Each finished item is committed in one transaction with all its rows, so killing the
process loses at most the item in flight. Re-running the same experiment resumes: items
already ``done`` are skipped; ``failed`` items are tried again (the failure is replaced).

Layout next to the store file: ``images/<experiment>/<item>/<kind>[--<defence>].png``
(``save_images``) and ``attacked/<item>.npy`` with its record (``keep_attacked``: exact
float copies of the attacked images, :mod:`engine.store.attacked`).

The schema has a version (``PRAGMA user_version``): an older store is migrated forward
when opened for writing, a store made by a newer version is refused. A damaged store is
never written to (``python main.py check STORE --salvage NEW`` copies what is readable).
Concurrent runs on one store share the work through item leases (:mod:`engine.run.leases`).
"""
from __future__ import annotations

import functools
import json
import math
import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from engine.core.errors import EXIT_STORE, ExpectedError
from engine.core.errors import DiskFullError, is_disk_full
from engine.spec.experiment import Experiment, WorkItem

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, created REAL NOT NULL, spec TEXT NOT NULL, total INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY AUTOINCREMENT, experiment_id TEXT NOT NULL, started REAL NOT NULL,
    manifest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, experiment_id TEXT NOT NULL, idx INTEGER NOT NULL,
    image TEXT NOT NULL, image_name TEXT NOT NULL, metric TEXT NOT NULL, attack TEXT NOT NULL,
    target_defence TEXT, status TEXT NOT NULL, error TEXT, stage TEXT, note TEXT,
    clean_score REAL, attacked_score REAL, steps TEXT, seconds REAL, finished REAL, run INTEGER
);
CREATE INDEX IF NOT EXISTS items_by_experiment ON items (experiment_id, idx);
CREATE TABLE IF NOT EXISTS rows (
    item_id TEXT NOT NULL, experiment_id TEXT NOT NULL, position INTEGER NOT NULL,
    defence TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (item_id, defence)
);
CREATE INDEX IF NOT EXISTS rows_by_experiment ON rows (experiment_id);
"""

#: the schema this code writes; ``MIGRATIONS[v]`` takes a store from version v-1 to v
SCHEMA_VERSION = 3
MIGRATIONS: dict[int, str] = {
    1: SCHEMA,  # the original layout (stores made before versioning have user_version 0)
    2: """
CREATE TABLE IF NOT EXISTS leases (
    item_id TEXT PRIMARY KEY, experiment_id TEXT NOT NULL, owner TEXT NOT NULL, expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_owner ON leases (owner);
""",
    # units by content: an item's id is what it computes (engine.spec.identity); an
    # experiment is a view over units. Experiments of schema 2 keep their rows, read
    # through rows.experiment_id as before (``identity`` NULL), never mixed with units.
    3: """
CREATE TABLE IF NOT EXISTS views (
    experiment_id TEXT NOT NULL, idx INTEGER NOT NULL, item_id TEXT NOT NULL, image TEXT NOT NULL,
    image_name TEXT NOT NULL, defences TEXT NOT NULL, mos REAL, PRIMARY KEY (experiment_id, idx)
);
CREATE INDEX IF NOT EXISTS views_by_item ON views (item_id);
CREATE TABLE IF NOT EXISTS contents (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL
);
ALTER TABLE items ADD COLUMN image_hash TEXT;
ALTER TABLE experiments ADD COLUMN identity TEXT;
""",
}


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration script (``executescript`` would commit first and
    run them outside the migration's transaction)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


#: the identity of an experiment's units (``experiments.identity``); NULL: by file name (schema ≤ 2)
CONTENT_IDENTITY = "content"
_CORRUPT_HINTS = ("malformed", "not a database", "corrupt", "disk i/o error", "file is encrypted")


def _dumps(obj: Any) -> str:
    """JSON with NaN/inf stored as null (they are never written as numbers)."""
    return json.dumps(_clean(obj), sort_keys=True)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def slug(text: str) -> str:
    """A file-name-safe version of a label."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:120] or "x"


class StoreError(ExpectedError, RuntimeError):
    """A store cannot be used (missing, unreadable, damaged, too new, busy); exit code 4."""

    exit_code = EXIT_STORE


class StoreCorrupt(StoreError):
    """The store file is damaged; it is not written to."""


class StoreTooNew(StoreError):
    """The store was made by a newer version of the tool (a higher schema version)."""


def corrupt_message(path: Path, detail: str) -> str:
    return (f"{path}: the store is damaged ({detail}); nothing was written to it. "
            f"Run `python main.py check {path} --salvage NEW.sqlite` to copy what is readable")


def _guarded(method):
    """Run a store method under :meth:`ResultStore._guard`."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._guard():
            return method(self, *args, **kwargs)
    return wrapper


class ResultStore:
    """An SQLite file of experiments, their runs (manifests), items and rows.

    Example:
        >>> store = ResultStore("out/results.sqlite")
        >>> rows = store.rows(store.latest_experiment_id())
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._corrupt = False
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a store file")
        if readonly and not self.path.exists():
            raise StoreError(f"{self.path}: no such store")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
        try:
            self._db = sqlite3.connect(uri, uri=readonly, timeout=30, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc})") from None
        self._db.row_factory = sqlite3.Row
        try:
            with self._guard():
                version = self._check_version()
                if not readonly:
                    self._check_integrity()
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=NORMAL")
                    self._migrate(version)
                else:
                    self._db.execute("SELECT 1 FROM experiments LIMIT 1")
        except BaseException:
            self._db.close()
            raise

    def _check_version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreTooNew(
                f"{self.path}: made by a newer version of this tool (store schema {version}; this "
                f"version knows up to {SCHEMA_VERSION}); upgrade the tool to read it, or use another --out")
        return version

    def _check_integrity(self) -> None:
        """Refuse to write to a damaged file (SQLite's quick check)."""
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            self._corrupt = True
            raise StoreCorrupt(corrupt_message(self.path, "; ".join(problems[:2])))

    def _migrate(self, version: int) -> None:
        """Bring an older (or new, empty) store to :data:`SCHEMA_VERSION` in one write
        transaction, reading the version again under its lock: two processes opening the
        same new store at once (a shared run) migrate it once, not twice."""
        if version >= SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for target in range(self._check_version() + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[target]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite errors as :class:`StoreError` (damage, busy) or :class:`DiskFullError`."""
        if self._corrupt and not self.readonly:
            raise StoreCorrupt(corrupt_message(self.path, "found damaged earlier"))
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc):
                raise DiskFullError(self.path) from None
            text = str(exc)
            if any(h in text.lower() for h in _CORRUPT_HINTS):
                self._corrupt = True
                raise StoreCorrupt(corrupt_message(self.path, text)) from None
            if "no such table" in text:
                raise StoreError(f"{self.path}: not a result store ({text})") from None
            if "locked" in text or "busy" in text:
                raise StoreError(f"{self.path}: the store stayed locked by another process for 30 s "
                                 f"({text}); try again") from None
            raise StoreError(f"{self.path}: {text}") from None

    @property
    def image_dir(self) -> Path:
        return self.path.parent / "images"

    @property
    def attacked_dir(self) -> Path:
        """Where the exact float copies of attacked images are kept (:mod:`engine.store.attacked`)."""
        from engine.store.attacked import COPY_DIR

        return self.path.parent / COPY_DIR

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- experiments and runs -------------------------------------------------------
    @_guarded
    def open_experiment(self, exp: Experiment, manifest: dict[str, Any],
                        items: list[WorkItem] | None = None, mos: dict[str, float] | None = None) -> int:
        """Register the experiment and its view over units (``items``, default
        ``exp.items()``), and a new run with its manifest; returns the run id.

        An experiment first run by a version before content identity is moved to it:
        its old rows stay in the store but are not read as its results any more."""
        items = exp.items() if items is None else items
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO experiments (id, created, spec, total, identity) VALUES (?, ?, ?, ?, ?)",
                (exp.id, time.time(), exp.to_json(), len(items), CONTENT_IDENTITY))
            self._db.execute("UPDATE experiments SET identity = ?, total = ? WHERE id = ?",
                             (CONTENT_IDENTITY, len(items), exp.id))
            self._db.execute("DELETE FROM views WHERE experiment_id = ?", (exp.id,))
            self._db.executemany(
                "INSERT INTO views (experiment_id, idx, item_id, image, image_name, defences, mos) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(exp.id, it.index, it.id, it.image, it.image_name, json.dumps(it.defence_labels),
                  (mos or {}).get(it.image_name)) for it in items])
            cur = self._db.execute("INSERT INTO runs (experiment_id, started, manifest) VALUES (?, ?, ?)",
                                   (exp.id, time.time(), _dumps(manifest)))
        return int(cur.lastrowid)

    def _is_view(self, exp_id: str) -> bool:
        if self.schema_version < 3:  # a read-only store of an older schema: no views
            return False
        r = self._db.execute("SELECT identity FROM experiments WHERE id = ?", (exp_id,)).fetchone()
        return r is not None and r[0] == CONTENT_IDENTITY

    @_guarded
    def identity(self, exp_id: str) -> str:
        """``content`` (units by content) or ``name`` (made before; rows read as they are)."""
        return CONTENT_IDENTITY if self._is_view(exp_id) else "name"

    @_guarded
    def stored_defences(self, item_ids: Iterable[str]) -> dict[str, set[str]]:
        """For each of ``item_ids`` done in the store, the defence labels it has rows for."""
        out: dict[str, set[str]] = {}
        for item_id in set(item_ids):
            r = self._db.execute("SELECT status FROM items WHERE item_id = ?", (item_id,)).fetchone()
            if r is None or r[0] != "done":
                continue
            out[item_id] = {x[0] for x in self._db.execute("SELECT defence FROM rows WHERE item_id = ?",
                                                            (item_id,))}
        return out

    @_guarded
    def attack_records(self, item_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """For each of ``item_ids`` done in the store, what its attack computed: the
        clean and attacked scores, the step records, the seconds, and ``row`` (the first
        of its stored rows that is still there: its attack columns are the attack's)."""
        out: dict[str, dict[str, Any]] = {}
        for item_id in set(item_ids):
            r = self._db.execute("SELECT clean_score, attacked_score, steps, seconds FROM items "
                                 "WHERE item_id = ? AND status = 'done'", (item_id,)).fetchone()
            row = self._db.execute("SELECT data FROM rows WHERE item_id = ? ORDER BY rowid LIMIT 1",
                                   (item_id,)).fetchone()
            if r is None or row is None:
                continue
            out[item_id] = {"clean": r["clean_score"], "attacked": r["attacked_score"],
                            "steps": json.loads(r["steps"]) if r["steps"] else [], "seconds": r["seconds"],
                            "row": json.loads(row[0])}
        return out

    def _view(self, exp_id: str) -> list[sqlite3.Row]:
        return self._db.execute("SELECT * FROM views WHERE experiment_id = ? ORDER BY idx", (exp_id,)).fetchall()

    @_guarded
    def experiments(self) -> list[dict[str, Any]]:
        out = []
        for r in self._db.execute("SELECT * FROM experiments ORDER BY created"):
            if self._is_view(r["id"]):
                statuses = [it["status"] for it in self.items(r["id"])]
                counts = {s: statuses.count(s) for s in set(statuses)}
            else:
                counts = dict(self._db.execute(
                    "SELECT status, COUNT(*) FROM items WHERE experiment_id = ? GROUP BY status",
                    (r["id"],)).fetchall())
            out.append({"id": r["id"], "created": r["created"], "spec": json.loads(r["spec"]),
                        "manifest": self.manifest(r["id"]), "total": r["total"],
                        "identity": self.identity(r["id"]),
                        "done": counts.get("done", 0), "failed": counts.get("failed", 0)})
        return out

    @_guarded
    def latest_experiment_id(self) -> str | None:
        r = self._db.execute(
            "SELECT experiment_id FROM runs ORDER BY started DESC, run DESC LIMIT 1").fetchone()
        return r[0] if r else None

    @_guarded
    def resolve(self, exp_id: str | None) -> str:
        """``exp_id`` itself (a unique prefix is enough), or the latest when None."""
        if exp_id is None:
            latest = self.latest_experiment_id()
            if latest is None:
                raise StoreError(f"{self.path}: the store holds no experiment")
            return latest
        rows = self._db.execute("SELECT id FROM experiments WHERE id LIKE ?", (exp_id + "%",)).fetchall()
        if len(rows) != 1:
            raise StoreError(f"{self.path}: {'no' if not rows else 'more than one'} experiment matches {exp_id!r}")
        return rows[0][0]

    @_guarded
    def experiment(self, exp_id: str | None = None) -> Experiment:
        exp_id = self.resolve(exp_id)
        r = self._db.execute("SELECT spec FROM experiments WHERE id = ?", (exp_id,)).fetchone()
        return Experiment.from_json(r[0])

    @_guarded
    def manifest(self, exp_id: str | None = None) -> dict[str, Any]:
        """The first run's manifest, with every run's manifest under ``runs``."""
        exp_id = self.resolve(exp_id)
        runs = [json.loads(r[0]) for r in self._db.execute(
            "SELECT manifest FROM runs WHERE experiment_id = ? ORDER BY run", (exp_id,))]
        if not runs:
            return {}
        first = dict(runs[0])
        first["runs"] = runs
        return first

    # ---- items ---------------------------------------------------------------------
    @_guarded
    def done_item_ids(self, exp_id: str) -> set[str]:
        """The experiment's items done with a row for each of its defences."""
        if not self._is_view(exp_id):
            return {r[0] for r in self._db.execute(
                "SELECT item_id FROM items WHERE experiment_id = ? AND status = 'done'", (exp_id,))}
        return {it["item_id"] for it in self.items(exp_id) if it["status"] == "done"}

    def _item_values(self, exp_id: str, item: WorkItem, status: str, run: int | None) -> dict[str, Any]:
        return {"item_id": item.id, "experiment_id": exp_id, "idx": item.index, "image": item.image,
                "image_hash": item.content,
                "image_name": item.image_name, "metric": item.metric.label, "attack": item.attack.label,
                "target_defence": item.target_defence.label if item.target_defence else None,
                "status": status, "finished": time.time(), "run": run}

    def _upsert_item(self, values: dict[str, Any]) -> None:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self._db.execute(f"INSERT OR REPLACE INTO items ({cols}) VALUES ({marks})", tuple(values.values()))

    @_guarded
    def write_item(self, exp_id: str, item: WorkItem, rows: Iterable[dict[str, Any]], *,
                   clean_score: float, attacked_score: float, steps: list[dict[str, Any]],
                   seconds: float, note: str = "", run: int | None = None) -> None:
        """Commit a finished item and its rows atomically (rows of the item's other
        defences, computed before, stay)."""
        values = self._item_values(exp_id, item, "done", run)
        values.update(clean_score=clean_score, attacked_score=attacked_score, steps=_dumps(steps),
                      seconds=seconds, note=note, error=None, stage=None)
        rows = list(rows)
        with self._db:
            self._db.executemany("DELETE FROM rows WHERE item_id = ? AND defence = ?",
                                 [(item.id, r["defence_label"]) for r in rows])
            self._upsert_item(values)
            self._db.executemany(
                "INSERT INTO rows (item_id, experiment_id, position, defence, data) VALUES (?, ?, ?, ?, ?)",
                [(item.id, exp_id, i, r["defence_label"], _dumps(r)) for i, r in enumerate(rows)])

    @_guarded
    def write_failure(self, exp_id: str, item: WorkItem, error: str, stage: str = "",
                      run: int | None = None) -> None:
        values = self._item_values(exp_id, item, "failed", run)
        values.update(error=error, stage=stage)
        with self._db:
            self._db.execute("DELETE FROM rows WHERE item_id = ?", (item.id,))
            self._upsert_item(values)

    def free_log_space(self) -> None:
        """After a full disk: fold the write-ahead log into the store and truncate it
        (what a failed transaction left in it is space the CSVs can use). Best effort."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass

    # ---- leases: concurrent runs on one store share the work ------------------------
    @_guarded
    def claim(self, exp_id: str, item_ids: Iterable[str], owner: str, ttl: float,
              since: float, is_dead: Callable[[str], bool] | None = None,
              extend: set[str] | frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
        """Lease to ``owner`` for ``ttl`` seconds those of ``item_ids`` no one else works on.

        Skipped: items done, items finished or failed by any run at or after ``since``
        (the claimer's start: another process got there first), and items leased to
        another owner whose lease has not expired (unless ``is_dead(owner)`` says that
        process is gone). ``extend``: items done that get rows for more defences (skipped
        only when finished at or after ``since``). One transaction, so two claimers never both get an item.

        Returns:
            ``(claimed, held)``: ``held`` are leased to another live owner (they become
            claimable if that lease expires unfinished).
        """
        now = time.time()
        claimed: list[str] = []
        held: list[str] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for item_id in item_ids:
                r = self._db.execute("SELECT status, finished FROM items WHERE item_id = ?", (item_id,)).fetchone()
                done = r is not None and r["status"] == "done" and item_id not in extend
                if r is not None and (done or (r["finished"] or 0.0) >= since):
                    continue
                lease = self._db.execute("SELECT owner, expires FROM leases WHERE item_id = ?",
                                         (item_id,)).fetchone()
                if (lease is not None and lease["owner"] != owner and lease["expires"] > now
                        and not (is_dead is not None and is_dead(lease["owner"]))):
                    held.append(item_id)
                    continue
                self._db.execute("INSERT OR REPLACE INTO leases (item_id, experiment_id, owner, expires) "
                                 "VALUES (?, ?, ?, ?)", (item_id, exp_id, owner, now + ttl))
                claimed.append(item_id)
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        return claimed, held

    @_guarded
    def release(self, owner: str, item_ids: Iterable[str] | None = None) -> None:
        """Drop ``owner``'s leases (all of them, or those of ``item_ids``)."""
        with self._db:
            if item_ids is None:
                self._db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
            else:
                self._db.executemany("DELETE FROM leases WHERE owner = ? AND item_id = ?",
                                     [(owner, i) for i in item_ids])

    @_guarded
    def leases(self, exp_id: str) -> list[dict[str, Any]]:
        """The live and expired leases of an experiment (item_id, owner, expires)."""
        return [dict(r) for r in self._db.execute(
            "SELECT item_id, owner, expires FROM leases WHERE experiment_id = ? ORDER BY item_id", (exp_id,))]

    @_guarded
    def items(self, exp_id: str | None = None) -> list[dict[str, Any]]:
        """The experiment's computed items in order (done or failed), under its own names.
        An item of a view is done when its unit is done with a row for each of the
        experiment's defences; one not computed (or not for every defence) is left out."""
        exp_id = self.resolve(exp_id)
        if not self._is_view(exp_id):
            out = []
            for r in self._db.execute("SELECT * FROM items WHERE experiment_id = ? ORDER BY idx", (exp_id,)):
                d = dict(r)
                d["steps"] = json.loads(d["steps"]) if d["steps"] else []
                out.append(d)
            return out
        out = []
        for v in self._view(exp_id):
            r = self._db.execute("SELECT * FROM items WHERE item_id = ?", (v["item_id"],)).fetchone()
            if r is None:
                continue  # not computed yet
            d = dict(r)
            d.update(experiment_id=exp_id, idx=v["idx"], image=v["image"], image_name=v["image_name"])
            d["steps"] = json.loads(d["steps"]) if d.get("steps") else []
            if d["status"] == "done":
                have = {x[0] for x in self._db.execute("SELECT defence FROM rows WHERE item_id = ?",
                                                       (v["item_id"],))}
                if not set(json.loads(v["defences"])) <= have:
                    continue  # computed for other defences only: pending here
            out.append(d)
        return out

    @_guarded
    def rows(self, exp_id: str | None = None) -> list[dict[str, Any]]:
        """Raw rows in experiment order (item, then defence). Missing numbers are None.

        Rows of a view are the rows of its units for its defences, under its own image
        names and MOS; an experiment made before content identity reads its own rows."""
        exp_id = self.resolve(exp_id)
        if not self._is_view(exp_id):
            q = ("SELECT rows.data FROM rows JOIN items ON rows.item_id = items.item_id "
                 "WHERE rows.experiment_id = ? ORDER BY items.idx, rows.position")
            return [json.loads(r[0]) for r in self._db.execute(q, (exp_id,))]
        out = []
        for v in self._view(exp_id):
            stored = {r[0]: r[1] for r in self._db.execute(
                "SELECT rows.defence, rows.data FROM rows JOIN items ON rows.item_id = items.item_id "
                "WHERE rows.item_id = ? AND items.status = 'done'", (v["item_id"],))}
            for label in json.loads(v["defences"]):
                if label in stored:
                    row = json.loads(stored[label])
                    row.update(image_name=v["image_name"], mos=v["mos"])
                    out.append(row)
        return out

    # ---- the image content cache (engine.run.identity) -------------------------------
    @_guarded
    def cached_hashes(self) -> dict[str, tuple[int, int, str]]:
        """Absolute image path → (size, mtime_ns, content hash) hashed before."""
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'contents'").fetchone() is None:
            return {}  # a read-only store of an older schema
        return {r[0]: (r[1], r[2], r[3]) for r in self._db.execute("SELECT path, size, mtime_ns, hash FROM contents")}

    @_guarded
    def cache_hashes(self, entries: dict[str, tuple[int, int, str]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO contents (path, size, mtime_ns, hash) VALUES (?, ?, ?, ?)",
                                 [(p, *v) for p, v in entries.items()])

    # ---- images --------------------------------------------------------------------
    def image_path(self, exp_id: str, item_id: str, kind: str, defence_label: str | None = None) -> Path:
        """Where an image of an item is (or would be) saved.

        ``kind``: ``clean``, ``attacked``, ``defended-clean`` or ``defended-attacked``.
        """
        name = kind if defence_label is None else f"{kind}--{slug(defence_label)}"
        return self.image_dir / exp_id / item_id / f"{name}.png"
