"""Running an experiment: one path from folder to rows, consumed by CLI, GUI and tests.

:func:`run_item` is a pure function of (item, experiment) — given the same inputs it
yields the same events and returns the same rows — and :func:`run_experiment` walks the
pending items, persisting each as it finishes. Consumers only iterate the events.
Compatible items can run as one batch (:func:`run_unit`, ``Experiment.batch_size``);
every image's rows are those it gets alone.
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
                           ItemFinished, ItemImages, RunFinished, RunStarted)
from engine.evaluation.protocol import attacked_for_protocol
from engine.evaluation.row import PairMeasures, evaluate_pair
from engine.evaluation.scores import attack_gained
from engine.experiment import Experiment, WorkItem, derive_seed
from engine.budgets import budget_columns
from engine.io.images import ImageLoadError, LoadedImage, load_image, save_png, to_uint8
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


def _finite_each(scores: torch.Tensor, what: str, stage: str) -> list[float]:
    """Per-image floats of a :math:`(B,)` score tensor, each checked to be finite."""
    return [_finite(float(scores[i].item()), what, stage) for i in range(scores.shape[0])]


def _scores(metric, x: torch.Tensor, what: str, stage: str) -> list[float]:
    """The metric's score of every image of ``x``; any failure is an :class:`ItemError`."""
    try:
        s = metric.score(x)
    except Exception as exc:  # noqa: BLE001 - any metric failure is this item's error
        raise ItemError(stage, f"{metric.name} could not score the {what}: {_describe(exc)}") from exc
    return _finite_each(s, f"{metric.name} score of the {what}", stage)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _BatchFailed(Exception):
    """Something failed inside a batch of several items: they are re-run one by one, so
    the failure is pinned to its item and the others finish."""


def _load(item: WorkItem, exp: Experiment, data: bytes | None) -> LoadedImage:
    try:
        return load_image(item.image, max_pixels=exp.max_pixels, data=data)
    except ImageLoadError as exc:
        raise ItemError("load", str(exc)) from None


def _per_image(seeds: list[int]) -> int | list[int]:
    """One seed for a single image (today's call), the list for a batch."""
    return seeds[0] if len(seeds) == 1 else seeds


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
    loaded = _load(item, exp, image_data)
    results = yield from _run_batch([item], [loaded], exp, runtime, cancel, mos)
    return results[0]


def _run_batch(items: list[WorkItem], loaded: list[LoadedImage], exp: Experiment, runtime: Runtime,
               cancel: CancelToken | None, mos: dict[str, float] | None,
               ) -> Generator[Event, None, list[ItemResult]]:
    """The one path from images to rows, for B ≥ 1 compatible items of one image size.

    Every quantity is computed once, as one B×3×H×W batch: the clean scores, the attack,
    the final iterate's score (the attack's own when it scored the returned image), and
    per defence two applies and two scored forwards (none: x, x_a and their scores
    reused); pair measures once per distinct pair (:class:`PairMeasures`). Per image:
    seeds (attack generator, defence and EOT draws), best iterate, step records, rows.

    A single item keeps today's failure semantics (:class:`ItemError`; a failing defence
    is an error row). In a batch of several, the first item's CleanScored and
    AttackStep events stream live (the live curve follows it); the other events wait
    until the batch has finished, and any failure raises :class:`_BatchFailed`.
    """
    t_item = time.perf_counter()
    dev = runtime.device
    first, n = items[0], len(items)
    batched = n > 1
    held: list[Event] = []  # events of a batch, released once it has finished

    def emit(ev: Event, live: bool = False) -> list[Event]:
        if live or not batched:
            return [ev]
        held.append(ev)
        return []

    x = torch.cat([ld.tensor for ld in loaded]).to(dev)
    try:
        metric = runtime.metric(first.metric)
    except Exception as exc:  # noqa: BLE001
        raise ItemError("metric", f"cannot build metric {first.metric.label}: {_describe(exc)}") from exc
    clean = _scores(metric, x, "clean image", "metric")
    for i, item in enumerate(items):
        yield from emit(CleanScored(item.id, clean[i]), live=i == 0)

    # --- attack -------------------------------------------------------------------------
    try:
        attack = runtime.attack(first.attack)
        target, mode = metric, "direct"
        if first.target_defence is not None and first.target_defence.name != "none":
            from engine.attacks.adaptive import target_metric

            eot_seeds = _per_image([derive_seed(it.seed, "eot") for it in items])
            target, mode = target_metric(metric, runtime.defence(first.target_defence),
                                         max(1, exp.eot_draws), eot_seeds)
    except Exception as exc:  # noqa: BLE001
        raise ItemError("attack", f"cannot set up attack {first.attack.label}: {_describe(exc)}") from exc
    gens = [torch.Generator().manual_seed(it.seed) for it in items]
    _sync(dev)
    t0 = time.perf_counter()
    run = attack.run(x, target, generator=gens[0] if n == 1 else gens)
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
            yield AttackStep(first.id, first.attack.label, step.image(0), clean[0])
    except (Cancelled, ItemError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise ItemError("attack", f"{first.attack.label} failed: {_describe(exc)}") from exc
    _sync(dev)
    attack_time = (time.perf_counter() - t0) / n
    x_adv, requantised = attacked_for_protocol(outcome.image.detach(), exp.protocol)
    if outcome.scores is not None and mode == "direct" and not requantised:  # the attack scored x_adv
        attacked = _finite_each(outcome.scores, f"{metric.name} score of the attacked image", "attack")
    else:  # adaptive: the attack scored M∘D, the row needs M(x_adv)
        attacked = _scores(metric, x_adv, "attacked image", "attack")
    if mode != "direct":
        outcome.mode = mode
    used = [int(u) for u in outcome.iteration_used] if outcome.iteration_used else [-1] * n
    for i, item in enumerate(items):
        yield from emit(AttackDone(item.id, attacked[i], attack_time, outcome.selection, used[i], outcome.mode))

    # --- defences -----------------------------------------------------------------------
    xs = [x[i:i + 1] for i in range(n)]
    xas = [x_adv[i:i + 1] for i in range(n)]
    measures = [PairMeasures() for _ in range(n)]  # x vs x_a measured once per image
    images = [ItemImages(to_uint8(xs[i]), to_uint8(xas[i])) for i in range(n)]
    rows: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for spec in first.defences:
        base = [dict(_common(item, exp, mos, loaded[i].note, clean[i], attacked[i], attack_time,
                             outcome, used[i], metric.lower_better),
                     defence=spec.name, defence_preset=spec.preset_label, defence_label=spec.label)
                for i, item in enumerate(items)]
        try:
            defence = runtime.defence(spec)
            dseeds = [derive_seed(it.seed, spec.key) for it in items]
            dxs, dxas, scored, seconds = _defend(metric, defence, x, x_adv, xs, xas, clean, attacked,
                                                 dseeds, exp, spec.label, dev)
            for i in range(n):
                row = base[i]
                row["defence_time"] = seconds / n
                s_dx, s_dxa = _eot_or_plain(row, scored, i)
                row.update(evaluate_pair(clean=clean[i], attacked=attacked[i], defended_clean=s_dx,
                                         defended_attacked=s_dxa,
                                         images={"x": xs[i], "xa": xas[i], "dx": dxs[i], "dxa": dxas[i]},
                                         bounds=metric.bounds, score_range=metric.range,
                                         geometric=getattr(defence, "geometric", False),
                                         measures=measures[i]))
                row.update(budget_columns(exp.budget, row))
                row["error"] = None
                images[i].defended_clean[spec.label] = (images[i].clean if dxs[i] is xs[i]
                                                        else to_uint8(dxs[i]))
                images[i].defended_attacked[spec.label] = (images[i].attacked if dxas[i] is xas[i]
                                                           else to_uint8(dxas[i]))
        except Exception as exc:  # noqa: BLE001 - one defence failing must not lose the others
            if batched:
                raise _BatchFailed(f"{spec.label}: {_describe(exc)}") from exc
            msg = str(exc) if isinstance(exc, ItemError) else f"{spec.label} failed: {_describe(exc)}"
            base[0]["error"] = msg
        for i, item in enumerate(items):
            rows[i].append(base[i])
            yield from emit(DefenceDone(item.id, spec.label, base[i]))

    for ev in held:
        yield ev
    seconds = (time.perf_counter() - t_item) / n
    return [ItemResult(rows[i], [s.image(i).to_dict() for s in outcome.steps], clean[i], attacked[i],
                       seconds, loaded[i].note, images[i]) for i in range(n)]


def _common(item: WorkItem, exp: Experiment, mos: dict[str, float] | None, note: str, clean: float,
            attacked: float, attack_time: float, outcome, used: int, lower_better: bool) -> dict[str, Any]:
    """The columns every row of an item shares."""
    return {
        "image_name": item.image_name, "metric": item.metric.label,
        "attack": item.attack.name, "attack_preset": item.attack.preset_label,
        "mos": (mos or {}).get(item.image_name), "attack_time": attack_time,
        "attack_iterations": max(0, len(outcome.steps) - 1), "iteration_used": used,
        "attack_queries": outcome.steps[-1].queries if outcome.steps else None,
        "attack_selection": outcome.selection, "attack_mode": outcome.mode,
        "attack_gained": attack_gained(clean, attacked, lower_better),
        "seed": item.seed, "item_id": item.id, "note": note,
    }


def _defend(metric, defence, x: torch.Tensor, x_adv: torch.Tensor, xs: list[torch.Tensor],
            xas: list[torch.Tensor], clean: list[float], attacked: list[float], seeds: list[int],
            exp: Experiment, label: str, dev: torch.device):
    """Apply one defence to the clean and attacked batch and score both.

    Returns the per-image defended views (``none``: the very x and x_a views, so their
    pairs count as identical), the scores from :func:`score_defended` and the seconds the
    two applies took.
    """
    if getattr(defence, "identity", False):
        return xs, xas, {"defended-clear": clean, "defended-attacked": attacked}, 0.0
    seed = _per_image(seeds)
    _sync(dev)
    t1 = time.perf_counter()
    with torch.no_grad():
        dx = defence(x, seed=seed)
        dxa = defence(x_adv, seed=seed)
    _sync(dev)
    seconds = (time.perf_counter() - t1) / 2
    scored = score_defended(metric, defence, x, x_adv, dx, dxa, seed, exp, label)
    n = x.shape[0]
    return [dx[i:i + 1] for i in range(n)], [dxa[i:i + 1] for i in range(n)], scored, seconds


def score_defended(metric, defence, x: torch.Tensor, x_adv: torch.Tensor, dx: torch.Tensor,
                   dxa: torch.Tensor, seed: int | list[int], exp: Experiment,
                   label: str) -> dict[str, Any]:
    """The scores of one defence for every image of the batch: M(D(x)) and M(D(x_a)).

    Plain: the metric's scores of the defended batches. A random defence with
    ``eot_draws`` > 1: means over the draws (the row's scores) with their spreads
    (``*_std`` columns); image comparisons still use draw 0. This is the one place where
    a defence's scores are computed: another kind of defended score (e.g. certified
    smoothing) is a branch here.

    Returns:
        ``defended-clear`` and ``defended-attacked``: per-image float lists; with EOT
        also ``eot_draws`` and the per-image ``*_std`` lists.
    """
    if getattr(defence, "smooths_metric", False):
        return _certify(metric, defence, x, x_adv, seed)
    if exp.eot_draws > 1 and defence.random:
        from engine.evaluation.eot import eot_scores

        r = eot_scores(metric, defence, x, x_adv, seed, exp.eot_draws)
        out: dict[str, Any] = {"eot_draws": int(r["draws"])}
        for key in ("defended-clear", "defended-attacked", "both_defended_abs_gain"):
            out[f"{key}_std"] = [float(v) for v in r[f"{key}_std"]]
        out["defended-clear"] = _finite_each(r["defended-clear_mean"], "EOT mean of M(D(x))", "defence")
        out["defended-attacked"] = _finite_each(r["defended-attacked_mean"], "EOT mean of M(D(x_a))",
                                                "defence")
        return out
    return {"defended-clear": _scores(metric, dx, f"{label}-defended clean image", "defence"),
            "defended-attacked": _scores(metric, dxa, f"{label}-defended attacked image", "defence")}


def _eot_or_plain(row: dict[str, Any], scored: dict[str, Any], i: int) -> tuple[float, float]:
    """Image ``i``'s M(D(x)), M(D(x_a)); EOT draws and spreads, or a certified defence's
    intervals, go into its row."""
    if "certified" in scored:
        row.update(scored["certified"][i])
    if "eot_draws" in scored:
        row["eot_draws"] = scored["eot_draws"]
        for key in ("defended-clear", "defended-attacked", "both_defended_abs_gain"):
            row[f"{key}_std"] = scored[f"{key}_std"][i]
    return scored["defended-clear"][i], scored["defended-attacked"][i]


def _certify(metric, defence, x: torch.Tensor, x_adv: torch.Tensor,
             seed: int | list[int]) -> dict[str, Any]:
    """A smoothing (certified) defence: each image's smoothed scores of x and x_a, both from
    that image's seed (the same noise draws; the same as when it runs alone), become its
    defended scores; the intervals and whether the certificate holds go to its
    ``certified_*`` columns, with ``defence_time`` the time per smoothed score. (EOT does
    not apply: the smoothing is itself the expectation.)"""
    from engine.evaluation.certified import certified_columns

    n = x.shape[0]
    seeds = seed if isinstance(seed, list) else [seed] * n
    out: dict[str, Any] = {"defended-clear": [], "defended-attacked": [], "certified": []}
    for i in range(n):
        xi, xai = x[i:i + 1], x_adv[i:i + 1]
        t0 = time.perf_counter()
        try:
            clean_c, attacked_c = defence.certify(metric, xi, seeds[i]), defence.certify(metric, xai, seeds[i])
        except Exception as exc:  # noqa: BLE001 - the metric or the denoiser failing on noisy samples
            raise ItemError("defence", f"{defence.name} could not smooth {metric.name}: {_describe(exc)}") from exc
        _sync(x.device)
        cols = certified_columns(clean_c, attacked_c, xi, xai, metric.range)
        cols["defence_time"] = (time.perf_counter() - t0) / 2
        out["certified"].append(cols)
        out["defended-clear"].append(_finite(float(clean_c.score[0]), "smoothed score of the clean image", "defence"))
        out["defended-attacked"].append(_finite(float(attacked_c.score[0]), "smoothed score of the attacked image",
                                                "defence"))
    return out


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
    """Group pending items into units of work, in order (see :func:`engine.batching.plan_units`).

    A unit is what one call of :func:`run_unit` computes: one item, or a batch of
    compatible items when ``exp.batch_size`` allows; back ends schedule units, the driver
    commits items.
    """
    from engine.batching import plan_units as plan

    return plan(pending, exp)


def run_unit(items: list[WorkItem], exp: Experiment, runtime: Runtime,
             cancel: CancelToken | None = None, mos: dict[str, float] | None = None,
             image_data: dict[str, bytes] | None = None,
             ) -> Generator[Event | ItemOutcome, None, None]:
    """Compute a unit of items: yields their events and one :class:`ItemOutcome` per item.

    ``image_data`` maps an item's image path to the file's bytes, when already read.

    The images are read first (one that cannot be read fails alone); compatible items of
    one size then run as batches of at most :func:`engine.batching.batch_limit` items. A
    batch in which anything fails is re-run item by item, so only the failing item
    fails; an out-of-memory halves the batch (remembered for the metric and size).
    A failure of one item (an :class:`ItemError`, or a bug) becomes that item's outcome;
    :class:`Cancelled` propagates (the unit in flight is dropped).
    """
    from engine.batching import unit_key

    groups: dict[tuple, list[tuple[WorkItem, LoadedImage]]] = {}
    for item in items:
        try:
            loaded = _load(item, exp, (image_data or {}).get(item.image))
        except ItemError as exc:
            yield ItemOutcome(item, error=str(exc), stage=exc.stage)
            continue
        groups.setdefault(unit_key(item, tuple(loaded.tensor.shape)), []).append((item, loaded))
    for group in groups.values():
        yield from _run_group(group, exp, runtime, cancel, mos)


def _run_group(group: list[tuple[WorkItem, LoadedImage]], exp: Experiment, runtime: Runtime,
               cancel: CancelToken | None, mos: dict[str, float] | None,
               ) -> Generator[Event | ItemOutcome, None, None]:
    """Compatible loaded items of one size, in batches; see :func:`run_unit`."""
    from engine.batching import batch_limit, is_oom, metric_batch_safe, remember_oom

    item0, shape = group[0][0], tuple(group[0][1].tensor.shape)
    safe = len(group) > 1 and metric_batch_safe(item0.metric)
    start = 0
    while start < len(group):
        size = batch_limit(runtime, exp, item0, shape, len(group) - start) if safe else 1
        chunk = group[start:start + size]
        if size == 1:
            yield from _run_alone(*chunk[0], exp, runtime, cancel, mos)
            start += 1
            continue
        try:
            results = yield from _run_batch([c[0] for c in chunk], [c[1] for c in chunk], exp,
                                            runtime, cancel, mos)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - pinned to its item below
            if is_oom(exc):
                remember_oom(runtime, item0, shape, size)
                continue
            for item, loaded in chunk:
                yield from _run_alone(item, loaded, exp, runtime, cancel, mos)
        else:
            for (item, _), result in zip(chunk, results):
                yield ItemOutcome(item, result=result)
        start += size


def _run_alone(item: WorkItem, loaded: LoadedImage, exp: Experiment, runtime: Runtime,
               cancel: CancelToken | None, mos: dict[str, float] | None,
               ) -> Generator[Event | ItemOutcome, None, None]:
    """One item as a batch of one; its failure becomes its outcome."""
    try:
        result = yield from _run_batch([item], [loaded], exp, runtime, cancel, mos)
    except Cancelled:
        raise
    except ItemError as exc:
        yield ItemOutcome(item, error=str(exc), stage=exc.stage)
    except Exception as exc:  # noqa: BLE001 - a bug must not lose the run
        msg = f"internal error: {_describe(exc)}\n{traceback.format_exc(limit=4)}"
        yield ItemOutcome(item, error=msg, stage="internal")
    else:
        yield ItemOutcome(item, result=result[0])


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
    from engine.training.robust_recipe import weights_manifest

    t_start = time.perf_counter()
    backend = backend or LocalBackend(runtime or Runtime(exp.device))
    items = exp.items()
    done = store.done_item_ids(exp.id)
    pending = [it for it in items if it.id not in done]
    mos = _load_mos(exp)
    keeper = LeaseKeeper(store, exp.id)
    try:
        run_id = store.open_experiment(exp, {"experiment_id": exp.id, "spec": exp.to_dict(),
                                             "seed": exp.seed, "owner": keeper.owner, **backend.manifest(),
                                             "metric_weights": weights_manifest(exp.metrics)})
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
