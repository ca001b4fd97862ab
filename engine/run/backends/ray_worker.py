"""The Ray actor: one :class:`~engine.run.runtime.Runtime` per worker, units run by ``run_unit``.

A plain class (no Ray import here): :func:`remote_class` wraps it with ``ray.remote``
when :mod:`engine.run.backends.ray_backend` starts the pool, so importing the engine never
needs Ray.
"""
from __future__ import annotations

import os
import queue
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

from engine.run.compute import run_unit
from engine.run.units import CancelToken, Cancelled, ItemOutcome


POLL_WAIT_S = 0.25  # how long one poll waits in the actor for the unit's first output
POLL_LINGER_S = 0.05  # a poll's gathering time after its first output (the live curve's delay)


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

        from engine.run.runtime import Runtime

        if threads is None:
            threads = _assigned_cpus()
        torch.set_num_threads(max(1, threads))
        self.host = socket.gethostname()
        self.runtime = Runtime(device)
        self._cancelled: set[str] = set()
        # Ray Client cannot stream: units submitted for polling run here, one at a time.
        self._pump = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unit")
        self._outboxes: dict[str, queue.Queue] = {}
        self._box_runs: dict[str, str] = {}  # unit id → run id, to drop abandoned outboxes
        self._lock = threading.Lock()
        from engine.plugins.remote import WorkerPlugins

        self.plugins = WorkerPlugins()

    def load_plugins(self, payload: dict[str, Any]) -> list[str]:
        """Load the plug-ins a run needs (their files' sources travel in ``payload``);
        the problems, each naming the plug-in (the items that need it fail)."""
        return self.plugins.load(payload)

    def info(self) -> dict[str, Any]:
        """Where this worker runs: host, pid and the runtime's manifest."""
        return {"host": self.host, "pid": os.getpid(), **self.runtime.manifest()}

    def run(self, run_id: str, items: list, exp, mos: dict[str, float] | None,
            image_data: dict[str, bytes]) -> Iterator[Any]:
        """Yield the events and :class:`ItemOutcome` s of one unit (a streaming generator).

        A cancelled run simply ends: the driver drops the unit's unfinished items.
        """
        token = RunCancel(self._cancelled, run_id)
        if token.cancelled:  # queued behind a unit of a run that was cancelled since
            return
        runnable = []
        for item in items:
            why = self.plugins.item_error(item)
            if why is None:
                runnable.append(item)
            else:
                yield self._name_host(ItemOutcome(item, error=why, stage="plugin"))
        try:
            for out in run_unit(runnable, exp, self.runtime, token, mos, image_data):
                yield self._name_host(out) if isinstance(out, ItemOutcome) else out
        except Cancelled:
            return

    def submit(self, unit_id: str, run_id: str, items: list, exp, mos: dict[str, float] | None,
               image_data: dict[str, bytes]) -> None:
        """Queue a unit whose outputs the driver fetches with :meth:`poll` (the transport
        for Ray Client, which has no streaming generators). Returns at once.

        Outboxes of earlier runs that were cancelled are dropped here: a driver that stopped
        early no longer polls them, and their buffered outputs would stay in memory."""
        with self._lock:
            for uid, rid in list(self._box_runs.items()):
                if rid != run_id and rid in self._cancelled:
                    self._outboxes.pop(uid, None)
                    del self._box_runs[uid]
            self._box_runs[unit_id] = run_id
        self._pump.submit(self._fill, self._box(unit_id), run_id, items, exp, mos, image_data)

    def poll(self, unit_id: str, wait_s: float = POLL_WAIT_S) -> tuple[list[Any], bool]:
        """The unit's next outputs and whether the unit has ended: waits up to ``wait_s``
        for the first, then gathers those that follow within ``POLL_LINGER_S`` (an
        outcome or the end returns at once).

        Raises:
            RuntimeError: the unit failed outside ``run_unit``'s own guards.
        """
        box = self._box(unit_id)
        outs: list[Any] = []
        deadline = time.monotonic() + wait_s
        try:
            while (left := deadline - time.monotonic()) > 0:
                out = box.get(timeout=left)
                outs.append(out)
                if isinstance(out, (_End, ItemOutcome)):  # an outcome goes back at once
                    break
                if len(outs) == 1:  # gather what follows for a moment: fewer round trips
                    deadline = min(deadline, time.monotonic() + POLL_LINGER_S)
        except queue.Empty:
            pass
        ended = bool(outs) and isinstance(outs[-1], _End)
        if ended:
            with self._lock:
                self._outboxes.pop(unit_id, None)
                self._box_runs.pop(unit_id, None)
            end = outs.pop()
            if end.error is not None:
                raise RuntimeError(end.error)
        return outs, ended

    def _box(self, unit_id: str) -> queue.Queue:
        """The unit's output queue (a poll may run before its submit: they are in
        different concurrency groups)."""
        with self._lock:
            return self._outboxes.setdefault(unit_id, queue.Queue())

    def _fill(self, box: queue.Queue, run_id: str, items: list, exp, mos, image_data) -> None:
        try:
            for out in self.run(run_id, items, exp, mos, image_data):
                box.put(out)
        except Exception as exc:  # noqa: BLE001 - reported to the driver by poll()
            box.put(_End(f"{type(exc).__name__}: {exc}"))
        else:
            box.put(_End())

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


def remote_class(ray, poll_threads: int) -> Any:
    """:class:`RayWorker` as a Ray actor class: ``cancel`` on its own control thread and
    ``poll`` on ``poll_threads`` threads, so both answer while a unit runs. The groups are
    declared on the methods because Ray Client cannot pick one per call."""

    class Worker(RayWorker):
        @ray.method(concurrency_group="control")
        def cancel(self, run_id: str) -> None:
            super().cancel(run_id)

        @ray.method(concurrency_group="poll")
        def poll(self, unit_id: str, wait_s: float = POLL_WAIT_S) -> tuple[list[Any], bool]:
            return super().poll(unit_id, wait_s)

    Worker.__name__ = Worker.__qualname__ = "RayWorker"
    return ray.remote(concurrency_groups={"control": 1, "poll": poll_threads})(Worker)


class _End:
    """The last output of a polled unit; ``error`` when it failed outside its guards."""

    def __init__(self, error: str | None = None) -> None:
        self.error = error


def _assigned_cpus() -> int:
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return max(1, int(cpus))
