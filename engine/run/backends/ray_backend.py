"""The ``ray`` back end: units computed by a pool of Ray actors, streamed back to the driver.

Flow: the driver (:func:`engine.run.driver.run_experiment`) plans units and hands them here.
Each actor (a :class:`~engine.run.backends.ray_worker.RayWorker`, one per GPU or
``workers`` sharing the CPUs) holds up to ``DEPTH`` units with the image files' bytes
(the next waits on the actor while the current one runs), runs
:func:`engine.run.compute.run_unit` on its own :class:`~engine.run.runtime.Runtime` and streams
back the events and :class:`~engine.run.units.ItemOutcome` s through a Ray streaming
generator; the streams of all actors interleave into the one stream the driver consumes,
and the driver alone writes the store. An actor that dies has its unit's unfinished items
retried on another (fresh) actor, up to ``max_retries`` times, then failed.
"""
from __future__ import annotations

import math
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from engine.run.backends import BackendError
from engine.run.backends.ray_connect import PROJECT_ROOT, connect, describe, import_ray
from engine.run.backends.ray_streams import PolledUnit, StreamedUnit
from engine.core.events import ItemStarted

if TYPE_CHECKING:
    from engine.core.events import Event
    from engine.spec.experiment import Experiment, WorkItem
    from engine.run.units import CancelToken, ItemOutcome

POLL_S = 0.05  # how often the driver looks at the cancel flag while waiting for events
# Units queued on one actor at a time: the next one waits on the actor while the current
# one runs, so the actor never idles for a round trip between units (and a shared store's
# leases are claimed at most one unit ahead per worker).
DEPTH = 2


@dataclass
class _Unit:
    items: list["WorkItem"]
    attempts: int = 0


@dataclass
class _Flight:
    """A unit in flight on one actor, and which of its items already have an outcome."""

    actor: Any
    unit: _Unit
    done: set[str] = field(default_factory=set)
    started: bool = False  # an output of this unit has arrived

    def unfinished(self) -> list["WorkItem"]:
        return [it for it in self.unit.items if it.id not in self.done]


class _Feed:
    """Units to run: those of lost workers first, then fresh ones, each pulled only when a
    worker is free (a shared store's leases are then claimed as late as possible)."""

    def __init__(self, units: Iterable[list["WorkItem"]]) -> None:
        self.fresh = iter(units)
        self.queue: deque[_Unit] = deque()
        self.exhausted = False

    def take(self) -> _Unit | None:
        if self.queue:
            return self.queue.popleft()
        for u in self.fresh:
            if u:
                return _Unit(list(u))
        self.exhausted = True
        return None

    def rest(self) -> list[_Unit]:
        """Every unit not yet given out."""
        return [*self.queue, *(_Unit(list(u)) for u in self.fresh if u)]


def _orphaned(units: list[_Unit]) -> Iterator["ItemOutcome"]:
    """No worker is left: each item of ``units`` fails."""
    from engine.run.units import ItemOutcome

    for unit in units:
        for item in unit.items:
            yield ItemOutcome(item, error="no Ray worker is left to compute this item "
                              "(all died and could not be restarted)", stage="worker")


def _read_images(items: list["WorkItem"]) -> dict[str, bytes]:
    """The image files' bytes (and those of the stored attacked images the items replay),
    read here so that workers need no shared file system.

    A file that cannot be read here is left out: the worker then reports the problem (a
    stored attacked image it cannot read: the attack is computed again, and its note says why).
    """
    data: dict[str, bytes] = {}
    for item in items:
        paths = [item.image] + ([item.replay.path] if item.replay is not None else [])
        for path in paths:
            if path not in data:
                try:
                    data[path] = Path(path).read_bytes()
                except OSError:
                    pass
    return data


def _actor_resources(ray, workers: int | None, use_gpu: bool) -> tuple[int, float, float]:
    """How many actors, and the CPUs and GPUs each asks for (fractions when they share)."""
    total = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    gpus = float(total.get("GPU", 0))
    n = workers or max(1, int(gpus) if use_gpu else len(nodes))
    node_cpus = min((float(nd["Resources"].get("CPU", 0)) for nd in nodes), default=1.0) or 1.0
    cpus = min(float(total.get("CPU", 1)) / n, node_cpus)
    cpus = float(int(cpus)) if cpus >= 1 else math.floor(cpus * 1e4) / 1e4
    return n, max(cpus, 1e-4), (min(1.0, gpus / n) if use_gpu else 0.0)


class RayBackend:
    """Units on a pool of Ray actors; the driver that iterates :meth:`execute` stays the
    only writer of the store.

    Args:
        device: ``auto`` (GPUs when the cluster has them, else CPUs), ``cpu`` or ``cuda``.
        address: an existing cluster (``auto``, ``HOST:6379``, or Ray Client's
            ``ray://HOST:10001``, whose units are polled since it cannot stream);
            ``None`` starts a local Ray instance on this machine.
        workers: actors in the pool; default one per GPU, or on CPUs one per node
            (``workers`` actors share a machine's cores; each gets its share as torch threads).
        max_retries: how often a unit whose actor died is retried on another actor.
        connect_timeout: seconds to reach ``address`` before giving up.
        start_timeout: seconds for the actors to start (build their process and runtime).
        stop_timeout: seconds a cancelled worker may take to stop before it is replaced.
        poll: carry the outputs by polling instead of streaming (see
            :mod:`engine.run.backends.ray_streams`); default: exactly for ``ray://`` addresses.

    Raises:
        BackendError: Ray missing, the address unreachable, or the workers cannot start.
    """

    def __init__(self, device: str = "auto", address: str | None = None, workers: int | None = None,
                 *, max_retries: int = 2, connect_timeout: float = 10.0, start_timeout: float = 180.0,
                 stop_timeout: float = 60.0, poll: bool | None = None) -> None:
        ray = self._ray = import_ray()
        if workers is not None and workers < 1:
            raise BackendError(f"--workers must be at least 1 (got {workers})")
        dev = (device or "auto").lower()
        if dev.startswith("cuda:"):
            raise BackendError(f"--device {device} picks one GPU of this process; with the ray back end "
                               f"use --device cuda or auto (Ray gives each worker its own GPU)")
        if dev not in ("auto", "cpu", "cuda"):
            raise BackendError(f"unknown device {device!r} for the ray back end: use auto, cpu or cuda")
        self.address = address
        self._polled = bool(address and address.startswith("ray://")) if poll is None else poll
        self.max_retries, self.start_timeout, self.stop_timeout = max_retries, start_timeout, stop_timeout
        self._owns_ray = connect(ray, address, num_cpus=None, timeout=connect_timeout)
        try:
            gpus = float(ray.cluster_resources().get("GPU", 0))
            if dev == "cuda" and gpus == 0:
                raise BackendError("--device cuda: the Ray cluster has no GPU (use --device cpu or auto)")
            use_gpu = dev == "cuda" or (dev == "auto" and gpus > 0)
            self.workers, cpus, gpu_share = _actor_resources(ray, workers, use_gpu)
            # Workers on this machine import the driver's engine (clusters get it shipped).
            env = {"PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)}
            self._options = {"num_cpus": cpus, "num_gpus": gpu_share, "runtime_env": {"env_vars": env}}
            self._args = ("cuda" if use_gpu else "cpu", max(1, int(cpus)))
            from engine.run.backends.ray_worker import remote_class

            self._cls = remote_class(ray, poll_threads=DEPTH)
            self._restarts_left = 0
            self._ready: list[Any] = []
            self._starting: dict[Any, tuple[Any, float]] = {}
            self._infos: list[dict[str, Any]] = []
            self._flights: dict[Any, _Flight] = {}
            self._plugins: dict[str, Any] = {"files": [], "packages": []}
            self._start_pool()
        except BaseException:
            self.close()
            raise
        devices = sorted({i["device"] for i in self._infos})
        hosts = sorted({i["host"] for i in self._infos})
        self.device_label = (f"ray: {self.workers} worker{'s' if self.workers > 1 else ''} "
                             f"({', '.join(devices)}) on {', '.join(hosts)}")

    # --- pool -----------------------------------------------------------------------------
    @property
    def actors(self) -> list[Any]:
        """The live actor handles (idle or busy)."""
        return list(self._all)

    @property
    def in_flight(self) -> dict[str, Any]:
        """Item id → the actor computing it, for the items of the units in flight."""
        return {it.id: f.actor for f in self._flights.values() for it in f.unfinished()}

    def _spawn(self) -> Any:
        actor = self._cls.options(**self._options).remote(*self._args)
        self._all.append(actor)
        self._starting[actor.info.remote()] = (actor, time.monotonic())
        return actor

    def _start_pool(self) -> None:
        ray = self._ray
        self._all: list[Any] = []
        for _ in range(self.workers):
            self._spawn()
        refs = list(self._starting)
        try:
            self._infos = ray.get(refs, timeout=self.start_timeout)
        except ray.exceptions.GetTimeoutError:
            raise BackendError(
                f"{self.workers} Ray worker(s) asking for {self._options['num_cpus']:g} CPU and "
                f"{self._options['num_gpus']:g} GPU each could not start within {self.start_timeout:g} s; "
                f"the cluster has {ray.cluster_resources()} — ask for fewer --workers") from None
        except ray.exceptions.RayError as exc:
            raise BackendError(f"the Ray workers could not start: {describe(exc)} (is this project "
                               f"and its dependencies installed on every node?)") from None
        self._ready = [self._starting[r][0] for r in refs]
        self._starting.clear()

    def _free(self, flights: dict[Any, _Flight]) -> Any | None:
        """The started actor with the fewest units queued, if it has room for one more."""
        load = {id(a): 0 for a in self._ready}
        for f in flights.values():
            if id(f.actor) in load:
                load[id(f.actor)] += 1
        best = min(self._ready, key=lambda a: load[id(a)], default=None)
        return best if best is not None and load[id(best)] < DEPTH else None

    def _replace(self, actor: Any) -> None:
        """Drop a dead (or stuck) actor and start a fresh one while the restart budget lasts
        (once per actor, however many of its units were lost)."""
        if actor in self._ready:
            self._ready.remove(actor)
        if actor not in self._all:
            return
        try:
            self._ray.kill(actor)
        except Exception:  # noqa: BLE001 - it is usually dead already
            pass
        self._all.remove(actor)
        if self._restarts_left > 0:
            self._restarts_left -= 1
            self._spawn()

    def _collect_started(self, timeout: float = 0.0) -> None:
        """Move actors that finished starting to the idle pool; drop those that failed."""
        if not self._starting:
            return
        ray = self._ray
        ready, _ = ray.wait(list(self._starting), num_returns=len(self._starting), timeout=timeout)
        for ref in ready:
            actor, _t = self._starting.pop(ref)
            try:
                ray.get(ref)
                if self._plugins["files"] or self._plugins["packages"]:
                    ray.get(actor.load_plugins.remote(self._plugins))
                self._ready.append(actor)
            except ray.exceptions.RayError:
                self._all.remove(actor)
        now = time.monotonic()
        for ref, (actor, t0) in list(self._starting.items()):
            if now - t0 > self.start_timeout:
                del self._starting[ref]
                self._all.remove(actor)
                ray.kill(actor)

    # --- Backend --------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        first = dict(self._infos[0]) if self._infos else {}
        first.pop("pid", None)
        first.pop("host", None)
        return {**first, "backend": "ray", "ray": self._ray.__version__,
                "ray_address": self.address or "local", "workers": self.workers,
                "ray_transport": "polled" if self._polled else "streamed",
                "worker_hosts": sorted({i["host"] for i in self._infos})}

    def execute(self, units: Iterable[list["WorkItem"]], exp: "Experiment", *,
                cancel: "CancelToken | None" = None, mos: dict[str, float] | None = None,
                ) -> Iterator["Event | ItemOutcome"]:
        """Compute ``units`` on the pool, up to ``DEPTH`` units queued per actor; yield
        every event and outcome as it arrives (ItemStarted when a unit is dispatched)."""
        ray = self._ray
        run_id = uuid.uuid4().hex
        self._send_plugins(exp)
        refs = (ray.put(exp), ray.put(mos or {}))
        self._restarts_left = 2 * self.workers + self.max_retries  # per run: bounded respawns
        total = getattr(units, "total", None)  # a lazily claimed feed knows its size
        if total is None:
            units = [u for u in units if u]
            total = sum(len(u) for u in units)
        feed = _Feed(units)
        position: dict[str, int] = {}
        flights: dict[Any, _Flight] = {}
        self._flights = flights
        try:
            while True:
                if cancel is not None and cancel.cancelled:
                    yield from self._stop(flights, run_id)
                    return
                self._collect_started()
                yield from self._dispatch(flights, feed, position, total, run_id, refs)
                if not flights:
                    if feed.exhausted and not feed.queue:
                        return
                    if self._starting:
                        self._collect_started(POLL_S)
                        continue
                    yield from _orphaned(feed.rest())
                    return
                for stream in self._wait(flights):
                    if stream in flights:  # not dropped with its dead actor's other units
                        yield from self._advance(stream, flights, feed.queue)
        finally:
            for f in flights.values():  # the consumer stopped early: stop the workers too
                f.actor.cancel.remote(run_id)

    def _send_plugins(self, exp: "Experiment") -> None:
        """Every worker loads the plug-ins ``exp`` uses (files travel as source, see
        :mod:`engine.plugins.remote`); a worker that cannot fails the items needing them."""
        from engine.plugins.records import ray_payload

        self._plugins = ray_payload(exp)
        if self._plugins["files"] or self._plugins["packages"]:
            self._ray.get([a.load_plugins.remote(self._plugins) for a in self._ready])

    def _dispatch(self, flights: dict[Any, _Flight], feed: "_Feed", position: dict[str, int], total: int,
                  run_id: str, refs: tuple[Any, Any]) -> Iterator["Event | ItemOutcome"]:
        """Give every free actor its next unit (ItemStarted per item); a unit that cannot
        even be submitted fails its items."""
        from engine.run.units import ItemOutcome

        while (actor := self._free(flights)) is not None:
            unit = feed.take()
            if unit is None:
                return
            for item in unit.items:
                position.setdefault(item.id, len(position) + 1)
                yield ItemStarted(item, position[item.id], total)
            try:
                stream = self._send(actor, run_id, unit, *refs)
            except Exception as exc:  # noqa: BLE001 - cannot even submit: fail, not crash
                for item in unit.items:
                    yield ItemOutcome(item, error=f"cannot send the item to a Ray worker: "
                                      f"{describe(exc)}", stage="worker")
                continue
            flights[stream] = _Flight(actor, unit)

    def _send(self, actor: Any, run_id: str, unit: _Unit, exp_ref: Any, mos_ref: Any) -> Any:
        """Start ``unit`` on ``actor``: streamed, or polled through Ray Client."""
        images = _read_images(unit.items)
        if self._polled:
            return PolledUnit(self._ray, actor, uuid.uuid4().hex, run_id, unit.items, exp_ref, mos_ref, images)
        return StreamedUnit(self._ray, actor, run_id, unit.items, exp_ref, mos_ref, images)

    def _wait(self, flights: dict[Any, _Flight]) -> list[Any]:
        """The units with outputs ready, after at most ``POLL_S``."""
        by_ref = {stream.waitable: stream for stream in flights}
        ready, _ = self._ray.wait(list(by_ref), num_returns=1, timeout=POLL_S)
        return [by_ref[ref] for ref in ready]

    def _advance(self, stream: Any, flights: dict[Any, _Flight],
                 queue: deque | None) -> Iterator["Event | ItemOutcome"]:
        """Take the outputs ready on one unit's stream. A dead actor's unfinished items go
        back to ``queue`` (or are dropped when it is ``None``: the run is being cancelled)."""
        from engine.run.units import ItemOutcome

        ray = self._ray
        flight = flights[stream]
        lost = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError)
        try:
            outs, ended = stream.take()
        except lost as exc:
            # Every unit on that actor is lost. An actor runs its units in order, so the
            # last one heard from was running (or, none heard from, the first): only it
            # counts an attempt. Units queued behind it, and one that finished but whose
            # last outputs died with the actor, go back untouched.
            mine = [g for g, f in flights.items() if f.actor is flight.actor]
            lost_flights = [flights.pop(g) for g in mine]
            self._replace(flight.actor)
            if queue is None:
                return
            reason = f"the Ray worker computing it died ({describe(exc)})"
            heard = [f for f in lost_flights if f.started]
            running = heard[-1] if heard else lost_flights[0]
            for f in reversed(lost_flights):  # appendleft: keep the dispatch order
                if f is running:
                    yield from self._requeue_or_fail(f, reason, queue)
                elif f.unfinished():
                    queue.appendleft(_Unit(f.unfinished(), f.unit.attempts))
            return
        except ray.exceptions.RayError as exc:  # the worker's code failed outside run_unit's guard
            del flights[stream]
            for item in flight.unfinished():
                yield ItemOutcome(item, error=f"Ray worker error: {describe(exc)}", stage="internal")
            return
        flight.started = flight.started or bool(outs)
        for out in outs:
            if isinstance(out, ItemOutcome):
                flight.done.add(out.item.id)
            yield out
        if ended:
            del flights[stream]
            if queue is not None:  # a stream that ends without all outcomes lost those items
                yield from self._requeue_or_fail(flight, "its worker stopped without a result", queue)

    def _requeue_or_fail(self, flight: _Flight, reason: str, queue: deque) -> Iterator["ItemOutcome"]:
        """Put a lost unit's unfinished items back in front of the queue, or fail them once
        the unit has been tried ``max_retries + 1`` times."""
        from engine.run.units import ItemOutcome

        left = flight.unfinished()
        if not left:
            return
        attempts = flight.unit.attempts + 1
        if attempts <= self.max_retries:
            queue.appendleft(_Unit(left, attempts))
            return
        for item in left:
            yield ItemOutcome(item, stage="worker", error=(
                f"the item's Ray worker was lost {attempts}× and it is not retried further "
                f"(run again to retry); last: {reason}"))

    def _stop(self, flights: dict[Any, _Flight], run_id: str) -> Iterator["Event | ItemOutcome"]:
        """Cancel every unit in flight and wait (bounded) until each worker has stopped;
        outcomes that still arrive are yielded (nothing computed is lost)."""
        for f in flights.values():
            f.actor.cancel.remote(run_id)
        deadline = time.monotonic() + self.stop_timeout
        while flights and time.monotonic() < deadline:
            for stream in self._wait(flights):
                if stream in flights:
                    yield from self._advance(stream, flights, None)
        for stream, f in list(flights.items()):  # stuck past the deadline: replace the worker
            del flights[stream]
            self._replace(f.actor)

    def close(self) -> None:
        """Stop the actors, and the local Ray instance when this back end started it."""
        for actor in getattr(self, "_all", []):
            try:
                self._ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._all = []
        self._ready = []
        self._starting = {}
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_ray = False

    def __enter__(self) -> "RayBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
