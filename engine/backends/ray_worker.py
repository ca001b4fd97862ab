"""The Ray actor: one :class:`~engine.runtime.Runtime` per worker, units run by ``run_unit``.

A plain class (no Ray import here): :mod:`engine.backends.ray_backend` wraps it with
``ray.remote`` when it starts the pool, so importing the engine never needs Ray.
"""
from __future__ import annotations

import os
import socket
from typing import Any, Iterator

from engine.runner import CancelToken, Cancelled, ItemOutcome, run_unit


class RunCancel(CancelToken):
    """Cancelled when the driver called :meth:`RayWorker.cancel` with this run's id.

    ``run_item`` checks it between attack steps, so a worker stops within one step.
    """

    def __init__(self, cancelled_runs: set[str], run_id: str) -> None:
        super().__init__()
        self._runs = cancelled_runs
        self._run_id = run_id

    @property
    def cancelled(self) -> bool:
        return self._run_id in self._runs or super().cancelled


class RayWorker:
    """Computes units on one device; models are built once and reused for every unit.

    Args:
        device: the torch device inside this worker (``cpu`` or ``cuda``: Ray makes the
            worker's own GPU ``cuda:0``).
        threads: torch CPU threads; ``None``: the CPUs Ray assigned to this actor.
    """

    def __init__(self, device: str = "cpu", threads: int | None = None) -> None:
        import torch

        from engine.runtime import Runtime

        if threads is None:
            threads = _assigned_cpus()
        torch.set_num_threads(max(1, threads))
        self.host = socket.gethostname()
        self.runtime = Runtime(device)
        self._cancelled: set[str] = set()

    def info(self) -> dict[str, Any]:
        """Where this worker runs: host, pid and the runtime's manifest."""
        return {"host": self.host, "pid": os.getpid(), **self.runtime.manifest()}

    def run(self, run_id: str, items: list, exp, mos: dict[str, float] | None,
            image_data: dict[str, bytes]) -> Iterator[Any]:
        """Yield the events and :class:`ItemOutcome` s of one unit (a streaming generator).

        A cancelled run simply ends: the driver drops the unit's unfinished items.
        """
        token = RunCancel(self._cancelled, run_id)
        try:
            for out in run_unit(items, exp, self.runtime, token, mos, image_data):
                yield self._name_host(out) if isinstance(out, ItemOutcome) else out
        except Cancelled:
            return

    def cancel(self, run_id: str) -> None:
        """Stop the unit of ``run_id`` at its next attack step (runs on a control thread)."""
        self._cancelled.add(run_id)

    def _name_host(self, out: ItemOutcome) -> ItemOutcome:
        """A worker's errors name its host: a weight file missing there is fixed there."""
        where = f" (on Ray worker host {self.host})"
        if not out.ok:
            out.error = out.error + where
        else:
            for row in out.result.rows:
                if row.get("error"):
                    row["error"] = row["error"] + where
        return out


def _assigned_cpus() -> int:
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return max(1, int(cpus))
