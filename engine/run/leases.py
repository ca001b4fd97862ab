"""Item leases: several processes (two ``run`` commands, the GUI beside a CLI run) share
the pending items of one experiment in one store instead of each computing all of them.

The driver claims a unit's items right before its back end takes the unit
(:meth:`LeaseKeeper.units`); a heartbeat thread renews the leases while they are worked
on; they are released when the item is committed and when the run ends (finished,
failed or cancelled). A killed process stops renewing, so its leases expire after
``IQA_LAB_LEASE_SECONDS`` (default 60) and another process takes those items over — at
once when the dead process ran on this host (its pid is gone).
"""
from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    from engine.spec.experiment import WorkItem
    from engine.run.units import CancelToken
    from engine.store.db import ResultStore


def lease_seconds() -> float:
    """How long a lease lasts without renewal (``IQA_LAB_LEASE_SECONDS``, default 60)."""
    try:
        return max(0.5, float(os.environ.get("IQA_LAB_LEASE_SECONDS", "60")))
    except ValueError:
        return 60.0


#: owners of the keepers open in this process (a stale lease of this process is dead)
_LIVE: set[str] = set()


def owner_is_dead(owner: str) -> bool:
    """Whether the run behind a lease owner (``host:pid:tag``) is gone: only known for
    this host (a kill -9 here needs no waiting); elsewhere its lease must expire."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return owner not in _LIVE
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, but not ours to signal
        return False
    return False


class UnitFeed:
    """The units a back end computes, claimed lazily; ``total`` items at most."""

    def __init__(self, units: Iterator[list["WorkItem"]], total: int) -> None:
        self._units = units
        self.total = total

    def __iter__(self) -> Iterator[list["WorkItem"]]:
        return self._units


class LeaseKeeper:
    """Claims, renews and releases one run's leases in ``store``.

    Args:
        store: the (writable) store the driver commits to.
        exp_id: the experiment.
        ttl: lease length in seconds (default :func:`lease_seconds`); renewed every ttl/3.
        extend: ids of units done in the store that this run adds defences' rows to.
    """

    def __init__(self, store: "ResultStore", exp_id: str, ttl: float | None = None,
                 extend: set[str] | frozenset[str] = frozenset()) -> None:
        self.store, self.exp_id = store, exp_id
        self.extend = frozenset(extend)  # done units that get rows for more defences
        self.ttl = lease_seconds() if ttl is None else ttl
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.since = time.time()
        _LIVE.add(self.owner)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        """Renew this owner's leases on a connection of its own (the driver's stays free)."""
        try:
            db = sqlite3.connect(str(self.store.path), timeout=10)
        except sqlite3.Error:
            return
        try:
            while not self._stop.wait(self.ttl / 3):
                try:
                    with db:
                        db.execute("UPDATE leases SET expires = ? WHERE owner = ?",
                                   (time.time() + self.ttl, self.owner))
                except sqlite3.Error:
                    pass  # busy or disk full: the next beat tries again; the lease may lapse
        finally:
            db.close()

    def claim(self, items: list["WorkItem"]) -> tuple[list["WorkItem"], list["WorkItem"]]:
        """``(claimed, held by another live process)`` among ``items``."""
        got, held = self.store.claim(self.exp_id, [it.id for it in items], self.owner, self.ttl, self.since,
                                     is_dead=owner_is_dead, extend=self.extend)
        got_ids, held_ids = set(got), set(held)
        return [it for it in items if it.id in got_ids], [it for it in items if it.id in held_ids]

    def units(self, planned: Iterable[list["WorkItem"]], cancel: "CancelToken | None" = None,
              poll: float = 0.5) -> Iterator[list["WorkItem"]]:
        """The planned units, each cut to the items claimed for this run right before it
        is handed out; then the items other processes held, one by one, as their leases
        expire unfinished (waiting while the other process is alive and working)."""
        waiting: list["WorkItem"] = []
        for unit in planned:
            if cancel is not None and cancel.cancelled:
                return
            got, held = self.claim(unit)
            waiting += held
            if got:
                yield got
        while waiting and not (cancel is not None and cancel.cancelled):
            got, waiting = self.claim(waiting)
            for item in got:
                yield [item]
            if waiting:
                if cancel is not None:
                    cancel.wait(poll)
                else:
                    time.sleep(poll)

    def done_with(self, item_id: str) -> None:
        self.store.release(self.owner, [item_id])

    def close(self) -> None:
        """Stop renewing and release every lease of this run (best effort)."""
        self._stop.set()
        _LIVE.discard(self.owner)
        try:
            self.store.release(self.owner)
        except Exception:  # noqa: BLE001 - a lease that is not released expires anyway
            pass
