"""The unit types both sides of a run share: the driver and the back ends.

A *unit* is a list of work items one back end call computes; each item ends as an
:class:`ItemOutcome`. A :class:`CancelToken` stops a run between attack steps
(:class:`Cancelled`); an :class:`ItemError` is one item's failure with its stage.
:class:`Backend` is what the driver asks of a back end. Nothing here computes.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol

from engine.core.events import Event, ItemImages

if TYPE_CHECKING:
    from engine.spec.experiment import Experiment, WorkItem


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
    """The run was cancelled; the unit in flight is dropped."""


class ItemError(Exception):
    """A per-item failure with the stage it happened in (load, metric, attack, defence)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass
class ItemResult:
    """A finished item: its rows (one per defence), attack steps, scores and images."""

    rows: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    clean_score: float
    attacked_score: float
    seconds: float
    note: str = ""
    images: ItemImages | None = None
    #: x_a as a 1×3×H×W numpy array for the store to keep (``keep_attacked``), else None
    attacked_copy: Any = field(default=None, repr=False)


@dataclass
class ItemOutcome:
    """How one item of a unit ended: ``result`` when it finished, else ``error``/``stage``.

    Picklable (images are numpy arrays), so a remote back end can send it to the driver.
    """

    item: "WorkItem"
    result: ItemResult | None = None
    error: str = ""
    stage: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None


class Backend(Protocol):
    """Where units are computed (:mod:`engine.run.backends`); the driver commits."""

    device_label: str

    def manifest(self) -> dict[str, Any]:
        """Versions and hardware of where the units run (stored with each run)."""

    def execute(self, units: Iterable[list["WorkItem"]], exp: "Experiment", *,
                cancel: CancelToken | None = None, mos: dict[str, float] | None = None,
                ) -> Iterator[Event | ItemOutcome]:
        """Compute ``units``; yield every item's events and its outcome. Returns early
        (without raising) when ``cancel`` is set."""

    def close(self) -> None:
        """Release workers (and anything the back end started)."""
