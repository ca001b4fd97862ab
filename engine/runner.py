"""Running an experiment: one path from folder to rows, consumed by CLI, GUI and tests.

:func:`run_item` is a pure function of (item, experiment) — given the same inputs it
yields the same events and returns the same rows — and :func:`run_experiment` walks the
pending items, persisting each as it finishes. Consumers only iterate the events.
"""
from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator

import torch

from engine.events import (AttackDone, AttackStep, CleanScored, DefenceDone, Event, ItemFailed,
                           ItemFinished, ItemImages, ItemStarted, RunFinished, RunStarted)
from engine.evaluation.row import evaluate_pair
from engine.evaluation.scores import attack_gained
from engine.experiment import Experiment, WorkItem, derive_seed
from engine.budgets import budget_columns
from engine.io.images import ImageLoadError, load_image, save_png, to_uint8
from engine.runtime import Runtime
from engine.store import ResultStore

if TYPE_CHECKING:
    from engine.backends import Backend


class CancelToken:
    """Thread-safe cancel flag, checked between attack steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once on cancel; True if cancelled."""
        return self._event.wait(timeout)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Cancelled(Exception):
    pass


class ItemError(Exception):
    """A per-item failure with the stage it happened in (load, metric, attack, defence)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass
class ItemResult:
    rows: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    clean_score: float
    attacked_score: float
    seconds: float
    note: str = ""
    images: ItemImages | None = None
    tensors: dict[str, Any] = field(default_factory=dict, repr=False)


def _finite(value: float, what: str, stage: str) -> float:
    if not math.isfinite(value):
        raise ItemError(stage, f"{what} is {value} (not a finite number); the item is not scored")
    return value


def _score(metric, x: torch.Tensor, what: str, stage: str) -> float:
    try:
        s = metric.score(x)
    except Exception as exc:  # noqa: BLE001 - any metric failure is this item's error
        raise ItemError(stage, f"{metric.name} could not score the {what}: {_describe(exc)}") from exc
    return _finite(float(s[0].item()), f"{metric.name} score of the {what}", stage)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_item(item: WorkItem, exp: Experiment, runtime: Runtime,
             cancel: CancelToken | None = None, mos: dict[str, float] | None = None,
             image_data: bytes | None = None) -> Generator[Event, None, ItemResult]:
    """Attack one image on one metric and evaluate every defence of the item.

    ``image_data``: the image file's bytes when the caller already read them (a remote
    worker has no access to the driver's files); otherwise the file is read here.

    Yields CleanScored, AttackStep…, AttackDone and one DefenceDone per defence; returns
    the rows. Raises :class:`ItemError` for a failure of this item and
    :class:`Cancelled` when ``cancel`` is set (checked between attack steps).
    """
    t_item = time.perf_counter()
    dev = runtime.device
    try:
        loaded = load_image(item.image, max_pixels=exp.max_pixels, data=image_data)
    except ImageLoadError as exc:
        raise ItemError("load", str(exc)) from None
    x = loaded.tensor.to(dev)

    try:
        metric = runtime.metric(item.metric)
    except Exception as exc:  # noqa: BLE001
        raise ItemError("metric", f"cannot build metric {item.metric.label}: {_describe(exc)}") from exc
    clean = _score(metric, x, "clean image", "metric")
    yield CleanScored(item.id, clean)

    # --- attack -------------------------------------------------------------------------
    try:
        attack = runtime.attack(item.attack)
        target, mode = metric, "direct"
        if item.target_defence is not None and item.target_defence.name != "none":
            from engine.attacks.adaptive import target_metric

            target, mode = target_metric(metric, runtime.defence(item.target_defence),
                                         max(1, exp.eot_draws), derive_seed(item.seed, "eot"))
    except Exception as exc:  # noqa: BLE001
        raise ItemError("attack", f"cannot set up attack {item.attack.label}: {_describe(exc)}") from exc
    gen = torch.Generator().manual_seed(item.seed)
    _sync(dev)
    t0 = time.perf_counter()
    run = attack.run(x, target, generator=gen)
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                run.close()
                raise Cancelled()
            try:
                step = next(run)
            except StopIteration as stop:
                outcome = stop.value
                break
            yield AttackStep(item.id, item.attack.label, step, clean)
    except (Cancelled, ItemError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise ItemError("attack", f"{item.attack.label} failed: {_describe(exc)}") from exc
    _sync(dev)
    attack_time = time.perf_counter() - t0
    x_adv = outcome.image.detach()
    attacked = _score(metric, x_adv, "attacked image", "attack")
    if mode != "direct":
        outcome.mode = mode
    used = int(outcome.iteration_used[0]) if outcome.iteration_used else -1
    yield AttackDone(item.id, attacked, attack_time, outcome.selection, used, outcome.mode)

    # --- defences -----------------------------------------------------------------------
    common = {
        "image_name": item.image_name, "metric": item.metric.label,
        "attack": item.attack.name, "attack_preset": item.attack.preset_label,
        "mos": (mos or {}).get(item.image_name), "attack_time": attack_time,
        "attack_iterations": max(0, len(outcome.steps) - 1), "iteration_used": used,
        "attack_queries": outcome.steps[-1].queries if outcome.steps else None,
        "attack_selection": outcome.selection, "attack_mode": outcome.mode,
        "attack_gained": attack_gained(clean, attacked, metric.lower_better),
        "seed": item.seed, "item_id": item.id, "note": loaded.note,
    }
    rows: list[dict[str, Any]] = []
    images = ItemImages(to_uint8(x), to_uint8(x_adv))
    for spec in item.defences:
        row = dict(common, defence=spec.name, defence_preset=spec.preset_label, defence_label=spec.label)
        try:
            defence = runtime.defence(spec)
            dseed = derive_seed(item.seed, spec.key)
            _sync(dev)
            t1 = time.perf_counter()
            with torch.no_grad():
                dx = defence(x, seed=dseed)
                dxa = defence(x_adv, seed=dseed)
            _sync(dev)
            row["defence_time"] = (time.perf_counter() - t1) / 2
            if getattr(defence, "smooths_metric", False):
                s_dx, s_dxa = _certify(row, metric, defence, x, x_adv, dseed)
            elif exp.eot_draws > 1 and defence.random:
                s_dx, s_dxa = _eot(row, metric, defence, x, x_adv, dseed, exp.eot_draws)
            else:
                s_dx = _score(metric, dx, f"{spec.label}-defended clean image", "defence")
                s_dxa = _score(metric, dxa, f"{spec.label}-defended attacked image", "defence")
            row.update(evaluate_pair(clean=clean, attacked=attacked, defended_clean=s_dx,
                                     defended_attacked=s_dxa,
                                     images={"x": x, "xa": x_adv, "dx": dx, "dxa": dxa},
                                     bounds=metric.bounds, score_range=metric.range,
                                     geometric=getattr(defence, "geometric", False)))
            row.update(budget_columns(exp.budget, row))
            row["error"] = None
            images.defended_clean[spec.label] = to_uint8(dx)
            images.defended_attacked[spec.label] = to_uint8(dxa)
        except Exception as exc:  # noqa: BLE001 - one defence failing must not lose the others
            msg = str(exc) if isinstance(exc, ItemError) else f"{spec.label} failed: {_describe(exc)}"
            row["error"] = msg
        rows.append(row)
        yield DefenceDone(item.id, spec.label, row)

    return ItemResult(rows, [s.to_dict() for s in outcome.steps], clean, attacked,
                      time.perf_counter() - t_item, loaded.note, images)


def _eot(row: dict[str, Any], metric, defence, x: torch.Tensor, x_adv: torch.Tensor, seed: int,
         draws: int) -> tuple[float, float]:
    """EOT over ``draws`` random draws: the mean scores become the row's scores (gains are
    computed from them), spreads go to ``*_std`` columns; image comparisons use draw 0."""
    from engine.evaluation.eot import eot_scores

    r = eot_scores(metric, defence, x, x_adv, seed, draws)
    row["eot_draws"] = int(r["draws"])
    for key in ("defended-clear", "defended-attacked", "both_defended_abs_gain"):
        row[f"{key}_std"] = float(r[f"{key}_std"][0])
    return (_finite(float(r["defended-clear_mean"][0]), "EOT mean of M(D(x))", "defence"),
            _finite(float(r["defended-attacked_mean"][0]), "EOT mean of M(D(x_a))", "defence"))


def _certify(row: dict[str, Any], metric, defence, x: torch.Tensor, x_adv: torch.Tensor,
             seed: int) -> tuple[float, float]:
    """A smoothing (certified) defence: the smoothed scores of x and x_a, both from the same
    seed (the same noise draws), become the row's defended scores; the intervals and whether
    the certificate holds go to the ``certified_*`` columns; ``defence_time`` is the time
    per smoothed score. (EOT does not apply: the smoothing is itself the expectation.)"""
    from engine.evaluation.certified import certified_columns

    t0 = time.perf_counter()
    try:
        clean_c, attacked_c = defence.certify(metric, x, seed), defence.certify(metric, x_adv, seed)
    except Exception as exc:  # noqa: BLE001 - the metric or the denoiser failing on noisy samples
        raise ItemError("defence", f"{defence.name} could not smooth {metric.name}: {_describe(exc)}") from exc
    _sync(x.device)
    row["defence_time"] = (time.perf_counter() - t0) / 2
    row.update(certified_columns(clean_c, attacked_c, x, x_adv, metric.range))
    return (_finite(float(clean_c.score[0]), "smoothed score of the clean image", "defence"),
            _finite(float(attacked_c.score[0]), "smoothed score of the attacked image", "defence"))


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


@dataclass
class ItemOutcome:
    """How one item of a unit ended: ``result`` when it finished, else ``error``/``stage``.

    Picklable (images are numpy arrays), so a remote back end can send it to the driver.
    """

    item: WorkItem
    result: ItemResult | None = None
    error: str = ""
    stage: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None


def plan_units(pending: list[WorkItem], exp: Experiment) -> list[list[WorkItem]]:
    """Group pending items into units of work, in order: one item per unit today.

    A unit is what one call of :func:`run_unit` computes (a batch, when batching groups
    compatible items); back ends schedule units, the driver commits items.
    """
    return [[item] for item in pending]


def run_unit(items: list[WorkItem], exp: Experiment, runtime: Runtime,
             cancel: CancelToken | None = None, mos: dict[str, float] | None = None,
             image_data: dict[str, bytes] | None = None,
             ) -> Generator[Event | ItemOutcome, None, None]:
    """Compute a unit of items: yields their events and one :class:`ItemOutcome` per item.

    ``image_data`` maps an item's image path to the file's bytes, when already read.

    A failure of one item (an :class:`ItemError`, or a bug) becomes that item's outcome;
    :class:`Cancelled` propagates (the unit in flight is dropped).
    """
    for item in items:
        data = (image_data or {}).get(item.image)
        gen = run_item(item, exp, runtime, cancel, mos, data)
        try:
            while True:
                try:
                    yield next(gen)
                except StopIteration as stop:
                    yield ItemOutcome(item, result=stop.value)
                    break
        except Cancelled:
            raise
        except ItemError as exc:
            yield ItemOutcome(item, error=str(exc), stage=exc.stage)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the run
            msg = f"internal error: {_describe(exc)}\n{traceback.format_exc(limit=4)}"
            yield ItemOutcome(item, error=msg, stage="internal")


def run_experiment(exp: Experiment, store: ResultStore, *, cancel: CancelToken | None = None,
                   runtime: Runtime | None = None, backend: "Backend | None" = None,
                   ) -> Generator[Event, None, RunFinished]:
    """Run every pending item of ``exp``, committing each to ``store`` as it finishes.

    Items already done in the store are skipped (resume). A failing item is stored as a
    failure and the run goes on. Cancel takes effect between attack steps; the items in
    flight are then dropped and everything finished stays in the store. ``backend``
    computes the units (default: :class:`engine.backends.LocalBackend` on ``runtime``);
    this driver is the only writer of the store, whatever the back end.
    """
    from engine.backends import LocalBackend
    from engine.leases import LeaseKeeper, UnitFeed

    t_start = time.perf_counter()
    backend = backend or LocalBackend(runtime or Runtime(exp.device))
    items = exp.items()
    done = store.done_item_ids(exp.id)
    pending = [it for it in items if it.id not in done]
    mos = _load_mos(exp)
    keeper = LeaseKeeper(store, exp.id)
    try:
        run_id = store.open_experiment(exp, {"experiment_id": exp.id, "spec": exp.to_dict(),
                                             "seed": exp.seed, "owner": keeper.owner, **backend.manifest()})
        yield RunStarted(exp.id, len(items), len(pending), backend.device_label)
        units = UnitFeed(keeper.units(plan_units(pending, exp), cancel), len(pending))
        finished, failed = yield from _drive(backend, units, exp, store, run_id, keeper, cancel, mos, pending)
    finally:
        keeper.close()
    cancelled = bool(cancel is not None and cancel.cancelled and finished + failed < len(pending))
    summary = RunFinished(exp.id, finished, failed, cancelled, time.perf_counter() - t_start)
    yield summary
    return summary


def _drive(backend: "Backend", units: Any, exp: Experiment, store: ResultStore, run_id: int,
           keeper: Any, cancel: CancelToken | None, mos: dict[str, float],
           pending: list[WorkItem]) -> Generator[Event, None, tuple[int, int]]:
    """Commit each outcome the back end streams; returns (finished, failed).

    A full disk stops the run after the last committed item (the store is consistent:
    the item being written is rolled back) with a :class:`DiskFullError` saying how much
    the rest is estimated to need.
    """
    from engine.errors import DiskFullError, is_disk_full

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
            result = out.result
            if exp.save_images and result.images is not None:
                written += _save_images(store, exp.id, item, result.images)
            store.write_item(exp.id, item, result.rows, clean_score=result.clean_score,
                             attacked_score=result.attacked_score, steps=result.steps,
                             seconds=result.seconds, note=result.note, run=run_id)
            finished += 1
            grown = max(0, _store_bytes(store) - size0)
            keeper.done_with(item.id)
            yield ItemFinished(item, result.rows, result.steps, result.images)
    except OSError as exc:
        if not (isinstance(exc, DiskFullError) or is_disk_full(exc)):
            raise
        store.free_log_space()
        per_item = (written + grown) / finished if finished else None
        rest = len(pending) - finished - failed
        raise DiskFullError(getattr(exc, "filename", None) or store.path,
                            needed=int(per_item * rest) if per_item else None,
                            done=f"{len(store.done_item_ids(exp.id))} of {len(exp.items())} items") from None
    finally:
        close = getattr(outputs, "close", None)
        if close is not None:
            close()
    return finished, failed


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
    return Path(out_dir) / "results.sqlite"
