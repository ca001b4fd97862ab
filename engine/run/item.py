"""One item (or a batch of compatible items): the one path from images to rows.

:func:`run_item` is a pure function of (item, experiment) — given the same inputs it
yields the same events and returns the same rows. The stages, each in its own function:
clean scores, the attack (:mod:`engine.run.attack`), one row per defence
(:func:`defence_rows`, numbers from :mod:`engine.run.defend`), and the event buffering
of a batch (:class:`EventBuffer`). An item that replays a stored attack
(:mod:`engine.run.replay`) skips the clean scores and the attack: both are the stored ones.
"""
from __future__ import annotations

import time
from typing import Any, Generator

import torch

from engine.core.events import CleanScored, DefenceDone, Event, ItemImages
from engine.core.seeds import derive_seed
from engine.spec.budgets import budget_columns
from engine.evaluation.row import PairMeasures, evaluate_pair
from engine.evaluation.eight_bit import eight_bit_columns
from engine.evaluation.scores import attack_gained
from engine.io.images import ImageLoadError, LoadedImage, load_image, to_uint8
from engine.run.attack import Attacked, run_attack
from engine.run.defend import defend, eot_or_plain
from engine.run.runtime import Runtime
from engine.run.scoring import failure_text, metric_scores
from engine.run.units import CancelToken, ItemError, ItemResult
from engine.spec.experiment import ComponentSpec, Experiment, WorkItem


class BatchFailed(Exception):
    """Something failed inside a batch of several items: they are re-run one by one, so
    the failure is pinned to its item and the others finish."""


class EventBuffer:
    """Which events stream now: all of a single item's; in a batch of several, only the
    first item's clean score and attack steps (the live curve follows it) — the rest
    wait until the batch has finished (:meth:`release`)."""

    def __init__(self, batched: bool) -> None:
        self.batched = batched
        self.held: list[Event] = []

    def emit(self, ev: Event, live: bool = False) -> list[Event]:
        if live or not self.batched:
            return [ev]
        self.held.append(ev)
        return []

    def release(self) -> list[Event]:
        held, self.held = self.held, []
        return held


def load_item(item: WorkItem, exp: Experiment, data: bytes | None) -> LoadedImage:
    """The item's image (from ``data`` when given); an unreadable one is a ``load`` error."""
    try:
        return load_image(item.image, max_pixels=exp.max_pixels, data=data)
    except ImageLoadError as exc:
        raise ItemError("load", str(exc)) from None


def run_item(item: WorkItem, exp: Experiment, runtime: Runtime,
             cancel: CancelToken | None = None, mos: dict[str, float] | None = None,
             image_data: bytes | None = None) -> Generator[Event, None, ItemResult]:
    """Attack one image on one metric and evaluate every defence of the item.

    ``image_data``: the image file's bytes when the caller already read them (a remote
    worker has no access to the driver's files); otherwise the file is read here.

    Yields CleanScored, AttackStep…, AttackDone and one DefenceDone per defence; returns
    the rows. Raises :class:`ItemError` for a failure of this item and
    :class:`~engine.run.units.Cancelled` when ``cancel`` is set (checked between attack steps).
    """
    loaded = load_item(item, exp, image_data)
    results = yield from run_batch([item], [loaded], exp, runtime, cancel, mos)
    return results[0]


def run_batch(items: list[WorkItem], loaded: list[LoadedImage], exp: Experiment, runtime: Runtime,
              cancel: CancelToken | None, mos: dict[str, float] | None,
              attacked: list[torch.Tensor] | None = None) -> Generator[Event, None, list[ItemResult]]:
    """The one path from images to rows, for B ≥ 1 compatible items of one image size.

    Every quantity is computed once, as one B×3×H×W batch: the clean scores, the attack,
    the final iterate's score (the attack's own when it scored the returned image), and
    per defence two applies and two scored forwards (none: x, x_a and their scores
    reused); pair measures once per distinct pair (:class:`PairMeasures`). Per image:
    seeds (attack generator, defence and EOT draws), best iterate, step records, rows.

    ``attacked``: the items' stored x_a (each item's ``replay``, :mod:`engine.run.replay`):
    the clean scores and the attack are then the stored ones and only the defences run.

    A single item keeps its failure semantics (:class:`ItemError`; a failing defence is
    an error row). In a batch of several, any failure raises :class:`BatchFailed`.
    """
    t_item = time.perf_counter()
    events = EventBuffer(len(items) > 1)
    x = torch.cat([ld.tensor for ld in loaded]).to(runtime.device)
    try:
        metric = runtime.metric(items[0].metric)
    except Exception as exc:  # noqa: BLE001
        raise ItemError("metric", f"cannot build metric {items[0].metric.label}: {failure_text(exc)}") from exc
    if attacked is not None:
        from engine.run.replay import replayed_attack

        att = replayed_attack(items, attacked, metric, exp, runtime.device)
        clean = [it.replay.clean for it in items]
    else:
        clean = metric_scores(metric, x, "clean image", "metric")
    for i, item in enumerate(items):
        yield from events.emit(CleanScored(item.id, clean[i]), live=i == 0)
    if attacked is None:
        att = yield from run_attack(items, x, metric, clean, exp, runtime, cancel)
    for i, item in enumerate(items):
        yield from events.emit(att.done_event(item.id, i))
    rows, images = yield from defence_rows(items, loaded, x, att, metric, clean, exp, runtime, mos, events)
    yield from events.release()
    seconds = (time.perf_counter() - t_item) / len(items)
    return [ItemResult(rows[i], att.step_records(i), clean[i], att.scores[i],
                       att.replayed[i].seconds if att.replayed else seconds, loaded[i].note, images[i],
                       attacked_copy=kept_copy(att, i, exp)) for i in range(len(items))]


def kept_copy(att: Attacked, i: int, exp: Experiment) -> Any:
    """Image ``i``'s x_a as a numpy array for the store to keep (``keep_attacked``; a
    replayed attack's copy is stored already), else None."""
    if not exp.keep_attacked or att.replayed is not None:
        return None
    return att.x_adv[i:i + 1].detach().to("cpu").numpy().copy()


def defence_rows(items: list[WorkItem], loaded: list[LoadedImage], x: torch.Tensor, att: Attacked, metric,
                 clean: list[float], exp: Experiment, runtime: Runtime, mos: dict[str, float] | None,
                 events: EventBuffer) -> Generator[Event, None, tuple[list[list[dict]], list[ItemImages]]]:
    """One row per image and defence, in the item's defence order; the images shown.

    A defence that fails is an error row of a single item (the others still run); in a
    batch of several it raises :class:`BatchFailed`.
    """
    n = len(items)
    views = ([x[i:i + 1] for i in range(n)], [att.x_adv[i:i + 1] for i in range(n)])
    measures = [PairMeasures() for _ in range(n)]  # x vs x_a measured once per image
    images = [ItemImages(to_uint8(views[0][i]), to_uint8(views[1][i])) for i in range(n)]
    rows: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    common = [common_columns(item, mos, loaded[i].note, clean[i], att, i, metric.lower_better)
              for i, item in enumerate(items)]  # the same for every defence (plain values)
    for spec in items[0].defences:
        base = [dict(common[i], defence=spec.name, defence_preset=spec.preset_label, defence_label=spec.label)
                for i in range(n)]
        try:
            one_defence(spec, items, x, att, views, metric, clean, exp, runtime, base, measures, images)
        except Exception as exc:  # noqa: BLE001 - one defence failing must not lose the others
            if n > 1:
                raise BatchFailed(f"{spec.label}: {failure_text(exc)}") from exc
            base[0]["error"] = str(exc) if isinstance(exc, ItemError) else f"{spec.label} failed: {failure_text(exc)}"
        for i, item in enumerate(items):
            rows[i].append(base[i])
            yield from events.emit(DefenceDone(item.id, spec.label, base[i]))
    return rows, images


def one_defence(spec: ComponentSpec, items: list[WorkItem], x: torch.Tensor, att: Attacked,
                views: tuple[list[torch.Tensor], list[torch.Tensor]], metric, clean: list[float],
                exp: Experiment, runtime: Runtime, base: list[dict[str, Any]], measures: list[PairMeasures],
                images: list[ItemImages]) -> None:
    """Fill each image's row ``base[i]`` for one defence and add its defended images."""
    xs, xas = views
    defence = runtime.defence(spec)
    dseeds = [derive_seed(it.seed, spec.key) for it in items]
    dxs, dxas, scored, seconds = defend(metric, defence, x, att.x_adv, xs, xas, clean, att.scores,
                                       dseeds, exp, spec.label, runtime.device)
    for i, row in enumerate(base):
        row["defence_time"] = seconds / len(items)
        s_dx, s_dxa = eot_or_plain(row, scored, i)
        row.update(evaluate_pair(clean=clean[i], attacked=att.scores[i], defended_clean=s_dx,
                                 defended_attacked=s_dxa,
                                 images={"x": xs[i], "xa": xas[i], "dx": dxs[i], "dxa": dxas[i]},
                                 bounds=metric.bounds, score_range=metric.range,
                                 geometric=getattr(defence, "geometric", False), measures=measures[i]))
        row.update(budget_columns(exp.budget, row))
        row["error"] = None
        images[i].defended_clean[spec.label] = images[i].clean if dxs[i] is xs[i] else to_uint8(dxs[i])
        images[i].defended_attacked[spec.label] = (images[i].attacked if dxas[i] is xas[i]
                                                   else to_uint8(dxas[i]))


def common_columns(item: WorkItem, mos: dict[str, float] | None, note: str, clean: float, att: Attacked,
                   i: int, lower_better: bool) -> dict[str, Any]:
    """The columns every row of image ``i``'s item shares."""
    return {
        "image_name": item.image_name, "metric": item.metric.label,
        "attack": item.attack.name, "attack_preset": item.attack.preset_label,
        "mos": (mos or {}).get(item.image_name), **att.columns(i),
        "attack_gained": attack_gained(clean, att.scores[i], lower_better),
        "seed": item.seed, "item_id": item.id, "image_hash": item.content, "note": note,
        **(eight_bit_columns(clean, att.scores[i], att.scores_8bit[i], lower_better)
           if att.scores_8bit is not None else {}),
    }
