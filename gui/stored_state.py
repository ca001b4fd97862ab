"""What a store holds of one experiment, read as plain data (no Qt, no image decoding).

:func:`read_stored` is what the session shows of an experiment: the store's experiments
(the Results combo), the experiment's rows and its computed items (status, curve, clean
score). The run worker reads it in its own thread right after the run has registered its
experiment (the rows reused from the store, shown at once); opening a store reads it
on the GUI thread (database reads only: the items' ids come from the store's view, so
no image is decoded there).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.spec.experiment import Experiment


@dataclass
class StoredState:
    """One experiment as the store holds it.

    Attributes:
        exp_id: the experiment.
        experiment: its spec (None when the store does not hold it yet).
        experiments: ``ResultStore.experiments()`` of the whole store.
        rows: its raw rows (done items, every defence), in experiment order.
        items: its computed items (``ResultStore.items``: done or failed, with ``idx``).
        error: why the store could not be read ("" when it was).
    """

    exp_id: str
    experiment: Experiment | None = None
    experiments: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def read_stored(store: Any, exp_id: str, exp: Experiment | None = None) -> StoredState:
    """Read ``exp_id`` from ``store`` (a path, or an open ``ResultStore``).

    Args:
        store: the store's file (opened read-only here; a missing file is an empty
            state) or an open store (the run worker's own connection).
        exp_id: the experiment; exp: its spec when known (read from the store otherwise).

    Returns:
        The state; ``error`` says why it could not be read (the rest is then empty).
    """
    from engine.store.db import ResultStore

    if isinstance(store, (str, Path)):
        if not Path(store).exists():
            return StoredState(exp_id, exp)
        try:
            with ResultStore(store, readonly=True) as opened:
                return read_stored(opened, exp_id, exp)
        except Exception as exc:  # noqa: BLE001 - shown as one line, the panels stay empty
            return StoredState(exp_id, exp, error=f"cannot read {store}: {exc}")
    experiments = store.experiments()
    if not any(e["id"] == exp_id for e in experiments):
        return StoredState(exp_id, exp, experiments)
    exp = exp or store.experiment(exp_id)
    return StoredState(exp_id, exp, experiments, store.rows(exp_id), store.items(exp_id))


@dataclass
class StoredList:
    """The store's experiments after a run (``ResultStore.experiments()``), read by the
    run worker so the GUI thread does not."""

    experiments: list[dict[str, Any]] = field(default_factory=list)
