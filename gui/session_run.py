"""The run in flight, as the session tracks it (no Qt): engine events → item states.

:class:`RunTracking` is the half of :class:`gui.session.Session` that consumes a run's
events (:mod:`engine.core.events`, plus the worker's :class:`~gui.stored_state.StoredState`
right after the run has started and :class:`~gui.stored_state.StoredList` after it has
finished) and notifies the session's observers. Its state (items, rows, observers) is the
session's.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from engine.core.events import (
    AttackDone,
    AttackStep,
    CleanScored,
    DefenceDone,
    ItemFailed,
    ItemFinished,
    ItemStarted,
    RunFinished,
    RunStarted,
)
from engine.spec.experiment import Experiment
from gui.flags import flag_row
from gui.session_types import ItemState, failure_row, step_point
from gui.stored_state import StoredList, StoredState


def attack_iterations(exp: Experiment) -> dict[str, int]:
    """Attack label → its iterations (the progress within an item); 1 when unknown."""
    from engine.attacks import ATTACKS
    from engine.run.runtime import merged_params

    out: dict[str, int] = {}
    for spec in exp.attacks:
        try:
            cls = ATTACKS.get(spec.name)
            params = {s.name: s.default for s in cls.param_specs()}
            params.update(merged_params(cls, spec))
            out[spec.label] = int(params.get("iters", 1) or 1)
        except Exception:  # noqa: BLE001 - progress just gets coarser
            out[spec.label] = 1
    return out


class RunTracking:
    """Starting a run and following its events (mixed into :class:`gui.session.Session`)."""

    # the session's state this half reads and writes (set up by Session.__init__)
    items: dict[str, ItemState]
    rows: list[dict[str, Any]]
    experiment: Experiment | None

    def begin_run(self, exp: Experiment) -> Path:
        """Make ``exp`` the experiment shown and return the store it will write to (in
        :attr:`output_dir`). What the store holds of it (a resume, or units reused from
        other experiments) arrives from the worker right after the run has started.

        Raises:
            RuntimeError: a run is in progress.  OSError: the output folder cannot be made.
        """
        if self.running:
            raise RuntimeError("a run is in progress")
        from engine.run.driver import store_path_for

        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.running = True
        self.finished = self.reused = 0
        self._show_starting(store_path_for(out), exp)
        self.running_changed.emit(True)
        return self.store_path  # type: ignore[return-value]

    def retarget(self, exp: Experiment) -> None:
        """The run in flight computes ``exp`` instead (its attacks were calibrated to a
        budget in the worker, which changes the experiment's identity)."""
        if self.running and self.store_path is not None:
            self._show_starting(self.store_path, exp)

    def _show_starting(self, path: Path, exp: Experiment) -> None:
        """``exp`` shown with nothing read yet (the worker reads the store)."""
        if self.store_path != Path(path):
            self.stored_experiments = []
        self.store_path, self.exp_id, self.experiment = Path(path), exp.id, exp
        self._track(exp)
        self.rows = []
        self.experiment_changed.emit()
        self.rows_reset.emit([])
        self._emit_all_images()

    def handle(self, ev: Any) -> None:
        """Consume one event of the run (in the GUI thread)."""
        handler = self._handlers.get(type(ev))
        if handler is not None:
            handler(self, ev)

    def _on_run_started(self, ev: RunStarted) -> None:
        self.reused = getattr(ev, "reused", 0)
        self.run_started.emit(ev)

    def _on_stored(self, stored: StoredState) -> None:
        """What the store held of the run's experiment when it started: reused and resumed
        rows are shown at once, their items done."""
        if stored.exp_id == self.exp_id:
            self._apply(stored)

    def _on_stored_list(self, listed: StoredList) -> None:
        self.stored_experiments = listed.experiments
        self.experiment_changed.emit()

    def _on_item_started(self, ev: ItemStarted) -> None:
        info = self._state_of(ev.item.id, ev.item.index)
        self._started[ev.item.id] = ev
        self.current_item = ev.item.id
        self._defences_done = 0
        if info is not None:
            info.status = "running"
            self._emit_image(info.image)
        self.item_started.emit(ev)
        self.progress.emit(self.finished, 0.0)

    def _follow(self, item_id: str) -> None:
        """A batch starts all its items at once, then streams one item's events: the item
        in flight is the one whose events arrive."""
        if item_id != self.current_item and item_id in self._started:
            self.current_item = item_id
            self.item_started.emit(self._started[item_id])

    def _on_clean(self, ev: CleanScored) -> None:
        self._follow(ev.item_id)
        self.clean_scores[ev.item_id] = ev.score
        self.clean_scored.emit(ev.item_id, ev.score)

    def _on_step(self, ev: AttackStep) -> None:
        self._follow(ev.item_id)
        self.steps.setdefault(ev.item_id, {}).setdefault(ev.attack, []).append(step_point(ev.step))
        self.step.emit(ev)
        n = self._iters.get(ev.attack, 1)
        self.progress.emit(self.finished, 0.85 * min(1.0, (ev.step.iteration + 1) / (n + 1)))

    def _on_attack_done(self, ev: AttackDone) -> None:
        self.progress.emit(self.finished, 0.85)

    def _on_defence_done(self, ev: DefenceDone) -> None:
        self._defences_done += 1
        n = len(self.experiment.all_defences) if self.experiment else 1
        self.progress.emit(self.finished, 0.85 + 0.15 * self._defences_done / max(1, n))
        if ev.row.get("error"):
            self.message.emit("error", f"{ev.row.get('image_name')}: defence {ev.defence}: {ev.row['error']}")

    def _on_item_finished(self, ev: ItemFinished) -> None:
        info = self._state_of(ev.item.id, ev.item.index)
        rows = [flag_row(r) for r in ev.rows]
        self.rows.extend(rows)
        self.finished += 1
        if info is not None:
            info.status = "done"
            self._emit_image(info.image)
        self.rows_added.emit(rows)
        self.progress.emit(self.finished, 0.0)
        self.followed = ev.item.id
        self.item_done.emit(ev.item.id)

    def _on_item_failed(self, ev: ItemFailed) -> None:
        it = ev.item
        info = self._state_of(it.id, it.index) or ItemState(it.id, it.image, it.image_name, it.metric.label,
                                                            it.attack.label)
        info.status, info.error, info.stage = "failed", ev.error.strip() or "failed", ev.stage
        self.items[it.id] = info
        self.finished += 1
        first = info.error.splitlines()[0]
        self.message.emit("error", f"{it.image_name} · {it.metric.label} · {it.attack.label}: [{ev.stage}] {first}")
        row = failure_row(info)
        self.rows.append(row)
        self._emit_image(info.image)
        self.rows_added.emit([row])
        self.progress.emit(self.finished, 0.0)

    def _on_run_finished(self, ev: RunFinished) -> None:
        state = "cancelled" if ev.cancelled else "finished"
        text = (f"{ev.finished} item(s) done, {ev.failed} failed in {ev.seconds:.1f} s"
                + (f"; {self.reused} item(s) reused from the store" if self.reused else ""))
        for info in self.items.values():
            if info.status == "running":
                info.status = "pending"
                self._emit_image(info.image)
        self.message.emit("warning" if ev.cancelled else ("error" if ev.failed else "ok"), f"run {state}: {text}")
        self.run_finished.emit(ev, text)

    def run_error(self, message: str) -> None:
        """The run as a whole could not go on (the worker's message)."""
        self.message.emit("error", f"the run stopped: {message}")

    def end_run(self) -> None:
        """The worker has stopped (always called last)."""
        if self.running:
            self.running = False
            self.current_item = None
            self.running_changed.emit(False)

    _handlers: ClassVar[dict[type, Callable[[Any, Any], None]]] = {
        RunStarted: _on_run_started, StoredState: _on_stored, StoredList: _on_stored_list,
        ItemStarted: _on_item_started, CleanScored: _on_clean, AttackStep: _on_step, AttackDone: _on_attack_done,
        DefenceDone: _on_defence_done, ItemFinished: _on_item_finished, ItemFailed: _on_item_failed,
        RunFinished: _on_run_finished,
    }
