"""Computing a unit of work: what every back end calls (:func:`run_unit`).

The images are read first (and the stored attacked image of an item that replays its
attack, :mod:`engine.run.replay`); compatible items of one size then run as batches
(:func:`engine.run.item.run_batch`); a batch in which anything fails is re-run item by
item, so only the failing item fails.
"""
from __future__ import annotations

import traceback
from dataclasses import replace
from typing import Generator

import torch

from engine.core.events import Event
from engine.io.images import LoadedImage
from engine.run.item import load_item, run_batch
from engine.run.runtime import Runtime
from engine.run.scoring import failure_text
from engine.run.units import Cancelled, CancelToken, ItemError, ItemOutcome
from engine.spec.experiment import Experiment, WorkItem


def run_unit(items: list[WorkItem], exp: Experiment, runtime: Runtime,
             cancel: CancelToken | None = None, mos: dict[str, float] | None = None,
             image_data: dict[str, bytes] | None = None,
             ) -> Generator[Event | ItemOutcome, None, None]:
    """Compute a unit of items: yields their events and one :class:`ItemOutcome` per item.

    ``image_data`` maps an item's image path (and its stored attacked image's path) to the
    file's bytes, when already read.

    The images are read first (one that cannot be read fails alone); compatible items of
    one size then run as batches of at most :func:`engine.run.batching.batch_limit` items. A
    batch in which anything fails is re-run item by item, so only the failing item
    fails; an out-of-memory halves the batch (remembered for the metric and size).
    A failure of one item (an :class:`ItemError`, or a bug) becomes that item's outcome;
    :class:`Cancelled` propagates (the unit in flight is dropped).
    """
    from engine.run.batching import unit_key

    groups: dict[tuple, list[Loaded]] = {}
    for item in items:
        try:
            loaded = load_item(item, exp, (image_data or {}).get(item.image))
        except ItemError as exc:
            yield ItemOutcome(item, error=str(exc), stage=exc.stage)
            continue
        item, loaded, attacked = with_stored_attack(item, loaded, image_data)
        groups.setdefault(unit_key(item, tuple(loaded.tensor.shape)), []).append((item, loaded, attacked))
    for group in groups.values():
        yield from _run_group(group, exp, runtime, cancel, mos)


#: an item ready to run: its image and, when it replays its attack, the stored x_a
Loaded = tuple[WorkItem, LoadedImage, "torch.Tensor | None"]


def with_stored_attack(item: WorkItem, loaded: LoadedImage, image_data: dict[str, bytes] | None) -> Loaded:
    """The item with its stored x_a when it replays its attack. A copy that cannot be used
    (damaged since the plan, or unreadable where this runs) is dropped: the attack is
    computed again and the item's note says why."""
    if item.replay is None:
        return item, loaded, None
    from engine.run.replay import load_attacked
    from engine.store.attacked import CopyUnusable

    try:
        return item, loaded, load_attacked(item, loaded, image_data)
    except CopyUnusable as exc:
        why = f"stored attacked image not used ({exc}); attack computed again"
        return replace(item, replay=None), LoadedImage(loaded.tensor, "; ".join(filter(None, [loaded.note, why]))), None


def _run_group(group: list[Loaded], exp: Experiment, runtime: Runtime,
               cancel: CancelToken | None, mos: dict[str, float] | None,
               ) -> Generator[Event | ItemOutcome, None, None]:
    """Compatible loaded items of one size, in batches; see :func:`run_unit`."""
    from engine.run.batching import batch_limit, is_oom, metric_batch_safe, remember_oom

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
        stored = [c[2] for c in chunk] if chunk[0][2] is not None else None
        try:
            results = yield from run_batch([c[0] for c in chunk], [c[1] for c in chunk], exp,
                                            runtime, cancel, mos, stored)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - pinned to its item below
            if is_oom(exc):
                remember_oom(runtime, item0, shape, size)
                continue
            for item, loaded, attacked in chunk:
                yield from _run_alone(item, loaded, attacked, exp, runtime, cancel, mos)
        else:
            for (item, _, _), result in zip(chunk, results):
                yield ItemOutcome(item, result=result)
        start += size


def _run_alone(item: WorkItem, loaded: LoadedImage, attacked: torch.Tensor | None, exp: Experiment,
               runtime: Runtime, cancel: CancelToken | None, mos: dict[str, float] | None,
               ) -> Generator[Event | ItemOutcome, None, None]:
    """One item as a batch of one; its failure becomes its outcome."""
    try:
        result = yield from run_batch([item], [loaded], exp, runtime, cancel, mos,
                                      None if attacked is None else [attacked])
    except Cancelled:
        raise
    except ItemError as exc:
        yield ItemOutcome(item, error=str(exc), stage=exc.stage)
    except Exception as exc:  # noqa: BLE001 - a bug must not lose the run
        msg = f"internal error: {failure_text(exc)}\n{traceback.format_exc(limit=4)}"
        yield ItemOutcome(item, error=msg, stage="internal")
    else:
        yield ItemOutcome(item, result=result[0])
