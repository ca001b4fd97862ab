"""Starting, following and cancelling a run: the panel's Run button to the worker and back.

The worker's events arrive (batched, queued) in :meth:`RunControl._on_events`, a slot of
this GUI-thread object, and go to the session; the live widgets (curves, progress,
status bar) observe the session.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QMessageBox

from engine.core.events import ItemFinished
from engine.spec.experiment import Experiment
from gui.plan import Plan, make_plan, without_problems
from gui.plan_dialog import PlanDialog
from gui.session import Session
from gui.session_types import step_point
from gui.worker import RunWorker, WorkerThread


class RunControl(QObject):
    """Run and Cancel for a :class:`~gui.main_window.MainWindow`."""

    def __init__(self, session: Session, window: Any) -> None:
        super().__init__(window)
        self.session, self.w = session, window
        self.controller = WorkerThread(self, "engine-run")
        self.controller.stopped.connect(self._on_stopped)
        self.run_count = 0
        self.plan: Plan | None = None
        self.plan_dialog: PlanDialog | None = None
        self.error_dialog: QMessageBox | None = None
        self._pending: Experiment | None = None
        self._close_after = False
        s = session
        s.run_started.connect(self._on_run_started)
        s.item_started.connect(self._on_item_started)
        s.clean_scored.connect(lambda _id, score: self.w.curves.set_clean(score))
        s.step.connect(lambda ev: self.w.curves.add_point(ev.attack, *step_point(ev.step)))
        s.progress.connect(lambda done, frac: self.w.panel.update_progress(finished=done, fraction_in_item=frac))
        s.run_finished.connect(self._on_run_finished)
        s.running_changed.connect(self._on_running)

    # ---- starting -----------------------------------------------------------------------
    def _experiment(self) -> Experiment | None:
        w = self.w
        try:
            return w.panel.build_experiment(self.session.images, self.session.folder)
        except (ValueError, KeyError) as exc:
            w.log.log("error", f"cannot start: {exc}")
            w.status_run.setText(f"cannot start: {exc}")
            return None

    def preview(self) -> PlanDialog | None:
        """Show the plan of the experiment the panel describes; Run from there."""
        exp = self._experiment()
        return self._ask(exp, self._plan(exp)) if exp is not None else None

    def notes(self, exp: Experiment) -> list[str]:
        """What the plan adds: unreadable images, items stored under another experiment."""
        from gui.stored_elsewhere import reuse_note

        out = []
        bad = len(self.session.unreadable)
        if bad:
            out.append(f"{bad} image(s) cannot be read: their items fail at once (see the thumbnails)")
        from engine.run.driver import store_path_for

        # the experiments listed are those of the store shown: the run's store only if the same
        same_store = self.session.store_path == store_path_for(self.session.output_dir)
        note = reuse_note(exp, self.session.stored_experiments) if same_store else ""
        if note:
            out.append(note)
        return out

    def _plan(self, exp: Experiment) -> Plan:
        from engine.run.driver import store_path_for

        self.plan = make_plan(exp, store_path_for(self.session.output_dir), self.w.panel.metric_info)
        return self.plan

    def start(self) -> bool:
        """Run what the panel describes. Components that cannot run are listed first (the
        run is refused, or they are skipped once the user confirms)."""
        if self.controller.running or self.session.running:
            return False
        exp = self._experiment()
        if exp is None:
            return False
        plan = self._plan(exp)
        if plan.problems:
            self._ask(exp, plan)
            return False
        for line in plan.lines() + self.notes(exp):
            self.w.log.log("info", f"plan: {line}")
        return self.go(exp)

    def _ask(self, exp: Experiment, plan: Plan) -> PlanDialog:
        self._pending = exp
        dialog = PlanDialog(plan, f"{len(exp.images)} image(s) × {len(exp.metrics)} metric(s) × "
                                  f"{len(exp.attacks)} attack(s) × {len(exp.all_defences)} defence(s)", self.w,
                            notes=self.notes(exp))
        dialog.accepted.connect(self._on_plan_accepted)
        self.plan_dialog = dialog
        if plan.problems:
            for p in plan.problems:
                self.w.log.log("warning", f"cannot run {p.kind} {p.label}: {p.reason}")
            self.w.status_run.setText(f"not started: {len(plan.problems)} chosen component(s) cannot run "
                                      "(see the plan)")
        dialog.open()
        return dialog

    @Slot()
    def _on_plan_accepted(self) -> None:
        exp, plan = self._pending, self.plan
        self._pending = None
        if exp is None or plan is None:
            return
        if plan.problems:
            exp = without_problems(exp, plan.problems)
            if exp is None:
                return
            self.w.log.log("warning", "skipping: " + ", ".join(p.label for p in plan.problems))
        self.go(exp)

    def go(self, exp: Experiment) -> bool:
        """Start ``exp`` now (no checks)."""
        w = self.w
        try:
            store_path = self.session.begin_run(exp)
        except (OSError, RuntimeError) as exc:
            w.log.log("error", f"cannot start: cannot create the output folder {self.session.output_dir}: {exc}")
            return False
        self.run_count += 1
        w.log.log("info", f"run {exp.id[:8]}: {len(exp.images)} image(s) × {len(exp.metrics)} metric(s) × "
                          f"{len(exp.attacks)} attack(s) × {len(exp.all_defences)} defence(s) → {store_path}")
        self.controller.start(RunWorker(exp, store_path, w.panel.backend_options()), self._connect)
        return True

    def _connect(self, worker: RunWorker) -> None:
        # bound methods of this GUI-thread object: queued, they run in the GUI thread
        worker.events.connect(self._on_events)
        worker.runError.connect(self._on_run_error)
        worker.calibrated.connect(self._on_calibrated)
        worker.notice.connect(self._on_notice)
        worker.backendFailed.connect(self._on_backend_failed)
        worker.done.connect(self._on_worker_done)

    # ---- following ----------------------------------------------------------------------
    @Slot(object)
    def _on_events(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, ItemFinished):
                self.w.display.item_finished(ev)
            self.session.handle(ev)

    def _on_running(self, running: bool) -> None:
        w = self.w
        w.panel.set_running(running)
        w.run_action.setEnabled(not running)
        w.cancel_action.setEnabled(running)

    def _on_run_started(self, ev: Any) -> None:
        w = self.w
        w.panel.start_progress(ev.pending, ev.total)
        before = getattr(ev, "reused", ev.total - ev.pending)
        w.status_run.setText(f"running on {ev.device}: {ev.pending} item(s) to compute"
                             + (f", {before} reused from the store" if before else ""))

    def _on_item_started(self, ev: Any) -> None:
        w, it = self.w, ev.item
        w.curves.begin(it.image_name, it.metric.label, w.panel.lower_better(it.metric.label))
        w.status_run.setText(f"[{ev.position}/{ev.pending}] {it.image_name} · {it.metric.label} · {it.attack.label}")

    def _on_run_finished(self, ev: Any, text: str) -> None:
        w = self.w
        before = self.session.done_before
        w.panel.finish_progress(("cancelled · " if ev.cancelled else "")
                                + f"{ev.finished} done · {ev.failed} failed · {ev.seconds:.0f} s"
                                + (f" · {before} stored before" if before else ""))
        w.status_run.setText(("cancelled: " if ev.cancelled else "finished: ") + text)

    @Slot(str, bool)
    def _on_run_error(self, message: str, must_act: bool) -> None:
        self.session.run_error(message)
        if must_act:
            box = QMessageBox(QMessageBox.Icon.Warning, "The run stopped", message,
                              QMessageBox.StandardButton.Ok, self.w)
            box.setObjectName("run_error")
            self.error_dialog = box
            box.open()

    @Slot(object)
    def _on_calibrated(self, exp: Experiment) -> None:
        self.session.retarget(exp)

    @Slot(str, str)
    def _on_notice(self, level: str, text: str) -> None:
        self.w.log.log(level, text)

    @Slot(str)
    def _on_backend_failed(self, message: str) -> None:
        text = f"the back end could not start: {message}"
        self.w.log.log("error", text)
        self.w.status_run.setText(text)
        box = QMessageBox(QMessageBox.Icon.Warning, "Back end unavailable",
                          f"{text}\n\nChoose the local back end, or check the Ray address and that Ray is "
                          "installed and running.", QMessageBox.StandardButton.Ok, self.w)
        box.setObjectName("backend_error")
        self.error_dialog = box
        box.open()

    @Slot()
    def _on_worker_done(self) -> None:
        self.session.end_run()

    # ---- cancelling ---------------------------------------------------------------------
    def cancel(self) -> None:
        if self.controller.running:
            self.controller.cancel()
            self.w.status_run.setText("cancelling after the current attack step…")
            self.w.log.log("warning", "cancel requested: stopping after the current attack step")

    def close_after_run(self) -> None:
        self._close_after = True
        self.controller.cancel()
        self.w.status_run.setText("closing: cancelling the run…")
        self.w.log.log("warning", "window closed during a run: cancelling, finished results are kept")

    @Slot()
    def _on_stopped(self) -> None:
        self.session.end_run()
        if self._close_after:
            self._close_after = False
            self.w.close()
