"""How a unit's outputs travel from a Ray actor to the driver: two carriers of one stream.

* :class:`StreamedUnit`: a Ray streaming generator (``RayWorker.run``), one object per
  event or outcome, as soon as the actor yields it. Used whenever the driver is a Ray
  node (``--ray-address auto``/``HOST:6379`` or a local instance).
* :class:`PolledUnit`: for Ray Client (``ray://``), which has no streaming generators. The
  actor queues the unit (``RayWorker.submit``) and the driver keeps one ``RayWorker.poll``
  call outstanding, each returning the outputs produced since the last one (see
  ``RayWorker.poll`` for how long it waits and gathers), so events arrive in order,
  grouped, with at most one poll's delay.

Both expose the object reference to pass to ``ray.wait`` (:attr:`waitable`) and
:meth:`take`, which returns the outputs now available and whether the unit has ended.
"""
from __future__ import annotations

from typing import Any


class StreamedUnit:
    """A unit whose outputs come one per object of a Ray streaming generator."""

    def __init__(self, ray: Any, actor: Any, run_id: str, items: list, exp_ref: Any, mos_ref: Any,
                 image_data: dict[str, bytes]) -> None:
        self._ray = ray
        self.waitable = actor.run.options(num_returns="streaming").remote(
            run_id, items, exp_ref, mos_ref, image_data)

    def take(self) -> tuple[list[Any], bool]:
        """The next output (call when :attr:`waitable` is ready), or ``([], True)`` at the end."""
        try:
            return [self._ray.get(next(self.waitable))], False
        except StopIteration:
            return [], True


class PolledUnit:
    """A unit queued on the actor whose outputs the driver polls for (Ray Client)."""

    def __init__(self, ray: Any, actor: Any, unit_id: str, run_id: str, items: list, exp_ref: Any,
                 mos_ref: Any, image_data: dict[str, bytes]) -> None:
        self._ray, self._actor, self._unit_id = ray, actor, unit_id
        actor.submit.remote(unit_id, run_id, items, exp_ref, mos_ref, image_data)
        self._poll()

    def _poll(self) -> None:
        self.waitable = self._actor.poll.remote(self._unit_id)

    def take(self) -> tuple[list[Any], bool]:
        """The outputs of the finished poll (call when :attr:`waitable` is ready); the next
        poll is sent at once unless the unit has ended."""
        outs, ended = self._ray.get(self.waitable)
        if not ended:
            self._poll()
        return list(outs), bool(ended)
