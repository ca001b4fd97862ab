"""The leaderboard of an experiment read from a result store (the GUI's panel)."""
from __future__ import annotations

from typing import Any

from engine.evaluation.leaderboard import QUALITY_FLOOR, leaderboard
from engine.evaluation.tables import summarise
from engine.store.db import ResultStore


def store_leaderboard(store_path: str, experiment_id: str | None = None, floor: float = QUALITY_FLOOR,
                      ci_method: str = "bootstrap") -> list[dict[str, Any]]:
    """The leaderboard of one experiment in a result store (the latest by default).

    Raises:
        engine.store.db.StoreError: the store cannot be read or has no such experiment.
    """
    with ResultStore(store_path, readonly=True) as store:
        rows = store.rows(store.resolve(experiment_id))
    return leaderboard(summarise(rows, ci_method) if rows else [], floor)
