"""Back ends: where the units of an experiment are computed.

The driver (:func:`engine.run.driver.run_experiment`) plans units, hands them to a back end
(a :class:`~engine.run.units.Backend`) and commits each :class:`~engine.run.units.ItemOutcome`
it gets back; it is the only writer of the store. A back end only computes: it runs
:func:`engine.run.compute.run_unit` (the one path from image to rows)
somewhere and streams back its events and outcomes,
plus an :class:`~engine.core.events.ItemStarted` per item as it starts.

``local`` (the default, :mod:`engine.run.backends.local`) runs units one after another in this process; ``ray``
(:mod:`engine.run.backends.ray_backend`) runs them on a pool of Ray actors, on this machine or
a cluster.
"""
from __future__ import annotations

from engine.core.errors import ExpectedError
from engine.run.units import Backend

BACKENDS = ("local", "ray")


class BackendError(ExpectedError, RuntimeError):
    """A back end could not be started or reached (bad address, missing package, …)."""


def make_backend(name: str = "local", *, device: str = "auto", address: str | None = None,
                 workers: int | None = None) -> Backend:
    """The back end called ``name`` (``local`` or ``ray``), ready to execute units.

    ``address`` and ``workers`` are the ray back end's (see
    :class:`~engine.run.backends.ray_backend.RayBackend`); call ``close()`` when done.

    Raises:
        BackendError: unknown name, or the back end cannot start.
    """
    if name == "local":
        from engine.run.backends.local import LocalBackend
        from engine.run.runtime import Runtime

        if address:
            raise BackendError(f"a Ray address ({address}) needs the ray back end (--backend ray)")
        return LocalBackend(Runtime(device))
    if name == "ray":
        from engine.run.backends.ray_backend import RayBackend

        return RayBackend(device, address=address, workers=workers)
    raise BackendError(f"unknown back end {name!r}; known: {', '.join(BACKENDS)}")
