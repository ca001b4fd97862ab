"""The driver: plans units, hands them to a back end, commits each outcome to the store.

:func:`run_experiment` walks the pending items of an experiment (resume: items done in
the store are skipped), persisting each as it finishes; it is the only writer of the
store, whatever the back end. Consumers (CLI, GUI, tests) only iterate its events.
With ``keep_attacked`` it also keeps the exact float copy of each attacked image that a
back end returns (:mod:`engine.store.attacked`), before the item is committed.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Generator

from engine.core.errors import DiskFullError, is_disk_full
from engine.core.events import Event, ItemFailed, ItemFinished, ItemImages, RunFinished, RunStarted
from engine.io.images import save_png
from engine.plugins.records import manifest as plugin_manifest
from engine.run.backends.local import LocalBackend
from engine.run.batching import plan_units
from engine.run.identity import reuse_plan
from engine.run.leases import LeaseKeeper, UnitFeed
from engine.run.runtime import Runtime
from engine.run.units import Backend, CancelToken, ItemOutcome
from engine.spec.experiment import Experiment, WorkItem
from engine.spec.identity import compute_version
from engine.store.attacked import remove_copy, write_copy
from engine.store.db import ResultStore
from engine.spec.recipes import weights_manifest
from engine.store.paths import STORE_NAME


def _save_images(store: ResultStore, exp_id: str, item: WorkItem, images: ItemImages) -> int:
    """Save an item's images as PNG; returns the bytes written. On a failure (a full
    disk) the item's images saved so far are removed: the item is not committed."""
    todo = [(images.clean, store.image_path(exp_id, item.id, "clean")),
            (images.attacked, store.image_path(exp_id, item.id, "attacked"))]
    todo += [(arr, store.image_path(exp_id, item.id, "defended-clean", label))
             for label, arr in images.defended_clean.items()]
    todo += [(arr, store.image_path(exp_id, item.id, "defended-attacked", label))
             for label, arr in images.defended_attacked.items()]
    saved: list[Path] = []
    try:
        for arr, path in todo:
            saved.append(save_png(arr, path))
    except BaseException:
        for p in saved:
            p.unlink(missing_ok=True)
        raise
    return sum(p.stat().st_size for p in saved)


def _load_mos(exp: Experiment) -> dict[str, float]:
    if not exp.mos_file:
        return {}
    from engine.evaluation.correlation import read_mos

    return read_mos(exp.mos_file)


def run_experiment(exp: Experiment, store: ResultStore, *, cancel: CancelToken | None = None,
                   runtime: Runtime | None = None, backend: Backend | None = None,
                   ) -> Generator[Event, None, RunFinished]:
    """Run every pending item of ``exp``, committing each to ``store`` as it finishes.

    Items already done in the store are skipped (resume). A failing item is stored as a
    failure and the run goes on. Cancel takes effect between attack steps; the items in
    flight are then dropped and everything finished stays in the store. ``backend``
    computes the units (default: :class:`engine.run.backends.LocalBackend` on ``runtime``);
    this driver is the only writer of the store, whatever the back end.
    """
    t_start = time.perf_counter()
    backend = backend or LocalBackend(runtime or Runtime(exp.device))
    reuse = reuse_plan(exp, store, verify=True)
    items, pending = reuse.items, reuse.pending
    mos = _load_mos(exp)
    keeper = LeaseKeeper(store, exp.id, extend=reuse.extended)
    try:
        run_id = store.open_experiment(exp, {"experiment_id": exp.id, "spec": exp.to_dict(),
                                             "seed": exp.seed, "owner": keeper.owner,
                                             "identity": {"compute_version": compute_version(), **reuse.summary(),
                                                          "keep_attacked": exp.keep_attacked},
                                             **backend.manifest(), "metric_weights": weights_manifest(exp.metrics),
                                             "plugins": plugin_manifest(exp)},
                                             items, mos)
        yield RunStarted(exp.id, len(items), len(pending), backend.device_label, reuse.reused, tuple(reuse.lines()),
                         len(reuse.replayed))
        units = UnitFeed(keeper.units(plan_units(pending, exp), cancel), len(pending))
        finished, failed = yield from _drive(backend, units, exp, store, run_id, keeper, cancel, mos, pending,
                                            len(items))
    finally:
        keeper.close()
    cancelled = bool(cancel is not None and cancel.cancelled and finished + failed < len(pending))
    summary = RunFinished(exp.id, finished, failed, cancelled, time.perf_counter() - t_start)
    yield summary
    return summary


def _drive(backend: Backend, units: Any, exp: Experiment, store: ResultStore, run_id: int,
           keeper: Any, cancel: CancelToken | None, mos: dict[str, float],
           pending: list[WorkItem], total: int = 0) -> Generator[Event, None, tuple[int, int]]:
    """Commit each outcome the back end streams; returns (finished, failed).

    A full disk stops the run after the last committed item (the store is consistent:
    the item being written is rolled back) with a :class:`DiskFullError` saying how much
    the rest is estimated to need.
    """
    finished = failed = 0
    written = 0  # bytes this run added (images + store growth), for the estimate
    size0 = _store_bytes(store)
    outputs = backend.execute(units, exp, cancel=cancel, mos=mos)
    try:
        for out in outputs:
            if not isinstance(out, ItemOutcome):
                yield out
                continue
            item = out.item
            if not out.ok:
                store.write_failure(exp.id, item, out.error, out.stage, run=run_id)
                failed += 1
                keeper.done_with(item.id)
                yield ItemFailed(item, out.error, out.stage)
                continue
            written += _commit(store, exp, item, out.result, run_id)
            finished += 1
            grown = max(0, _store_bytes(store) - size0)
            keeper.done_with(item.id)
            yield ItemFinished(item, out.result.rows, out.result.steps, out.result.images)
    except OSError as exc:
        if not (isinstance(exc, DiskFullError) or is_disk_full(exc)):
            raise
        store.free_log_space()
        per_item = (written + grown) / finished if finished else None
        rest = len(pending) - finished - failed
        raise DiskFullError(getattr(exc, "filename", None) or store.path,
                            needed=int(per_item * rest) if per_item else None,
                            done=f"{len(store.done_item_ids(exp.id))} of {total} items") from None
    finally:
        close = getattr(outputs, "close", None)
        if close is not None:
            close()
    return finished, failed


def _commit(store: ResultStore, exp: Experiment, item: WorkItem, result: Any, run_id: int) -> int:
    """Write a finished item: its attacked image's float copy (``keep_attacked``) and its
    images (``save_images``) first, then its rows in one transaction; the bytes of files
    written. A crash in between leaves files without rows: the item is computed again
    (a copy is only reused with the stored rows whose M(x_a) it records)."""
    written = 0
    kept = exp.keep_attacked and result.attacked_copy is not None
    if kept:
        written += write_copy(store.attacked_dir, item.id, result.attacked_copy, result.attacked_score)
    try:
        if exp.save_images and result.images is not None:
            written += _save_images(store, exp.id, item, result.images)
        store.write_item(exp.id, item, result.rows, clean_score=result.clean_score,
                         attacked_score=result.attacked_score, steps=result.steps,
                         seconds=result.seconds, note=result.note, run=run_id)
    except BaseException:
        if kept:  # not committed (a full disk): leave the room to the CSVs
            remove_copy(store.attacked_dir, item.id)
        raise
    return written


def _store_bytes(store: ResultStore) -> int:
    """The store file and its write-ahead log, in bytes."""
    total = 0
    for p in (store.path, store.path.with_name(store.path.name + "-wal")):
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


def store_path_for(out_dir: str | Path) -> Path:
    """The conventional store file inside an output folder."""
    return Path(out_dir) / STORE_NAME
