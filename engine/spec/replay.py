"""A stored attack that an item replays instead of attacking again.

When a defence is added to a grid whose attacks are stored, the new defence's rows need
the attacked image x_a. A run with ``keep_attacked`` keeps an exact float copy of each
x_a beside the store (:mod:`engine.store.attacked`); the plan
(:func:`engine.run.replay.find_replays`) attaches to such an item an
:class:`AttackReplay`: where the copy is, how to check it, and the attack's own numbers
from the unit's stored rows. The item's new rows are then computed from the copy
(:mod:`engine.run.replay`) and equal those of a full recompute. Plain data: it travels
with the item to any back end.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the columns of a row that the attack alone determines (copied from the unit's stored
#: rows when its attack is replayed; ``attack_gained`` and the 8-bit columns follow from
#: the scores and are recomputed)
ATTACK_COLUMNS = ("attack_time", "attack_iterations", "iteration_used", "attack_queries",
                  "attack_selection", "attack_mode")


@dataclass(frozen=True)
class AttackReplay:
    """Where a unit's stored attacked image is, and its attack's stored numbers.

    Attributes:
        path: the copy's file (``.npy``) beside the store.
        sha256: the file's checksum, from the record written beside it.
        shape: x_a's shape, ``(1, 3, H, W)``.
        dtype: x_a's numpy dtype (``float32``).
        clean: the unit's stored M(x).
        attacked: the unit's stored M(x_a) (also recorded beside the copy, so a copy that
            is not the attack behind the stored rows is refused).
        attacked_8bit: the stored M(x_a on the 8-bit grid) (None: computed from the copy).
        columns: the :data:`ATTACK_COLUMNS` of the unit's stored rows.
        steps: the attack's stored step records.
        seconds: the unit's stored compute time.
    """

    path: str
    sha256: str
    shape: tuple[int, ...]
    dtype: str
    clean: float
    attacked: float
    attacked_8bit: float | None
    columns: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
