"""Back ends: where the units of an experiment are computed.

The driver (:func:`engine.run.runner.run_experiment`) plans units, hands them to a back end
and commits each :class:`~engine.run.runner.ItemOutcome` it gets back; it is the only
writer of the store. A back end only computes: it runs :func:`engine.run.runner.run_unit`
(the one path from image to rows) somewhere and streams back its events and outcomes,
plus an :class:`~engine.core.events.ItemStarted` per item as it starts.

``local`` (the default) runs units one after another in this process; ``ray``
(:mod:`engine.run.backends.ray_backend`) runs them on a pool of Ray actors, on this machine or
a cluster.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol

from engine.core.events import Event, ItemStarted

if TYPE_CHECKING:
    from engine.spec.experiment import Experiment, WorkItem
    from engine.run.runner import CancelToken, ItemOutcome
    from engine.run.runtime import Runtime

BACKENDS = ("local", "ray")


class BackendError(RuntimeError):
    """A back end could not be started or reached (bad address, missing package, …)."""


class Backend(Protocol):
    device_label: str

    def manifest(self) -> dict[str, Any]:
        """Versions and hardware of where the units run (stored with each run)."""

    def execute(self, units: Iterable[list["WorkItem"]], exp: "Experiment", *,
                cancel: "CancelToken | None" = None, mos: dict[str, float] | None = None,
                ) -> Iterator["Event | ItemOutcome"]:
        """Compute ``units``; yield every item's events and its outcome. Returns early
        (without raising) when ``cancel`` is set."""

    def close(self) -> None:
        """Release workers (and anything the back end started)."""


class LocalBackend:
    """Units one after another in this process, on one :class:`~engine.run.runtime.Runtime`."""

    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime
        self.device_label = str(runtime.device)

    def manifest(self) -> dict[str, Any]:
        return {"backend": "local", **self.runtime.manifest()}

    def execute(self, units: Iterable[list["WorkItem"]], exp: "Experiment", *,
                cancel: "CancelToken | None" = None, mos: dict[str, float] | None = None,
                ) -> Iterator["Event | ItemOutcome"]:
        from engine.run.runner import Cancelled, run_unit

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


def make_backend(name: str = "local", *, device: str = "auto", address: str | None = None,
                 workers: int | None = None) -> Backend:
    """The back end called ``name`` (``local`` or ``ray``), ready to execute units.

    ``address`` and ``workers`` are the ray back end's (see
    :class:`~engine.run.backends.ray_backend.RayBackend`); call ``close()`` when done.

    Raises:
        BackendError: unknown name, or the back end cannot start.
    """
    if name == "local":
        from engine.run.runtime import Runtime

        if address:
            raise BackendError(f"a Ray address ({address}) needs the ray back end (--backend ray)")
        return LocalBackend(Runtime(device))
    if name == "ray":
        from engine.run.backends.ray_backend import RayBackend

        return RayBackend(device, address=address, workers=workers)
    raise BackendError(f"unknown back end {name!r}; known: {', '.join(BACKENDS)}")
