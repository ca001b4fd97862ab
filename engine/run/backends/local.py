"""The local back end: units one after another in this process."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from engine.core.events import Event, ItemStarted
from engine.run.compute import run_unit
from engine.run.runtime import Runtime
from engine.run.units import Cancelled, CancelToken, ItemOutcome
from engine.spec.experiment import Experiment, WorkItem


class LocalBackend:
    """Units one after another in this process, on one :class:`~engine.run.runtime.Runtime`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.device_label = str(runtime.device)

    def manifest(self) -> dict[str, Any]:
        return {"backend": "local", **self.runtime.manifest()}

    def execute(self, units: Iterable[list[WorkItem]], exp: Experiment, *,
                cancel: CancelToken | None = None, mos: dict[str, float] | None = None,
                ) -> Iterator[Event | ItemOutcome]:
        total = getattr(units, "total", None)  # a lazily claimed feed knows its size
        if total is None:
            units = list(units)
            total = sum(len(u) for u in units)
        position = 0
        for unit in units:
            if cancel is not None and cancel.cancelled:
                return
            for item in unit:
                position += 1
                yield ItemStarted(item, position, total)
            try:
                yield from run_unit(unit, exp, self.runtime, cancel, mos)
            except Cancelled:
                return

    def close(self) -> None:
        pass
