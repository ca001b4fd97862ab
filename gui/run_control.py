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
from gui.worker import BackgroundCall, RunWorker, WorkerThread


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
        self._plan_request = 0
        self._pending: Experiment | None = None
        self._close_after = False
        s = session
        s.run_started.connect(self._on_run_started)
        s.item_started.connect(self._on_item_started)
        s.clean_scored.connect(lambda _id, score: self.w.curves.set_clean(score))
        s.step.connect(lambda ev: self.w.curves.add_point(ev.attack, *step_point(ev.step)))
        s.progress.connect(lambda done, frac: self.w.panel.progress.advance(finished=done, fraction_in_item=frac))
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

    def preview(self, exp: Experiment | None = None) -> BackgroundCall | None:
        """Show the plan of ``exp`` (default: the experiment the panel describes); Run from
        there. The plan hashes the images and reads the store: it is made in the
        background, and the dialog opens when it is ready (the call is returned)."""
        exp = exp or self._experiment()
        if exp is None:
            return None
        from engine.run.driver import store_path_for

        self._plan_request += 1
        request, store = self._plan_request, store_path_for(self.session.output_dir)
        info = dict(self.w.panel.metric_info)
        self.w.status_run.setText("making the plan…")
        return self.w.pool.call(lambda: (request, exp, make_plan(exp, store, info)), self._on_plan, self._on_plan_failed)

    @Slot(object)
    def _on_plan(self, answer: tuple[int, Experiment, Plan]) -> None:
        request, exp, plan = answer
        if request != self._plan_request or self.session.running:
            return  # a newer plan was asked for, or a run started meanwhile
        self.plan = plan
        self._ask(exp, plan)

    @Slot(str)
    def _on_plan_failed(self, message: str) -> None:
        self.w.log.log("error", f"could not make the plan: {message}")
        self.w.status_run.setText("could not make the plan (see the Log)")

    def notes(self) -> list[str]:
        """What the plan adds: unreadable images."""
        bad = len(self.session.unreadable)
        return [f"{bad} image(s) cannot be read: their items fail at once (see the thumbnails)"] if bad else []

    def start(self) -> bool:
        """Run what the panel describes. Components that cannot run refuse the run: the
        plan lists them (the user may skip them). What is reused from the store and what is
        computed is said when the run starts (the worker finds it, off this thread)."""
        if self.controller.running or self.session.running:
            return False
        exp = self._experiment()
        if exp is None:
            return False
        from engine.plugins.records import recorded
        from engine.run.prepare import check

        if check(recorded(exp), self.w.panel.metric_info):
            self.preview(exp)
            return False
        return self.go(exp)

    def _ask(self, exp: Experiment, plan: Plan) -> PlanDialog:
        self._pending = exp
        dialog = PlanDialog(plan, f"{len(exp.images)} image(s) × {len(exp.metrics)} metric(s) × "
                                  f"{len(exp.attacks)} attack(s) × {len(exp.all_defences)} defence(s)", self.w,
                            notes=self.notes())
        dialog.accepted.connect(self._on_plan_accepted)
        self.plan_dialog = dialog
        if plan.problems:
            for p in plan.problems:
                self.w.log.log("warning", f"cannot run {p.kind} {p.label}: {p.reason}")
            self.w.status_run.setText(f"not started: {len(plan.problems)} chosen component(s) cannot run "
                                      "(see the plan)")
        else:
            self.w.status_run.setText(f"plan: {plan.lines()[0]}")
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
        self.controller.start(RunWorker(exp, store_path, w.panel.options.backend_options()), self._connect)
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
        w, reused = self.w, getattr(ev, "reused", 0)
        w.panel.progress.start(ev.pending, ev.total, reused)
        w.status_run.setText(f"running on {ev.device}: {ev.pending} item(s) to compute"
                             + (f", {reused} reused from the store" if reused else ""))
        w.log.log("info", f"plan: {ev.pending} item(s) to compute of {ev.total}"
                          + (f", {reused} reused from the store (their rows are shown)" if reused else ""))
        for note in getattr(ev, "notes", ()) or ():
            w.log.log("info", f"plan: {note}")

    def _on_item_started(self, ev: Any) -> None:
        w, it = self.w, ev.item
        w.curves.begin(it.image_name, it.metric.label, w.panel.lower_better(it.metric.label))
        w.status_run.setText(f"[{ev.position}/{ev.pending}] {it.image_name} · {it.metric.label} · {it.attack.label}")

    def _on_run_finished(self, ev: Any, text: str) -> None:
        w = self.w
        reused = self.session.reused
        w.panel.progress.finish(("cancelled · " if ev.cancelled else "")
                                + f"{ev.finished} done · {ev.failed} failed · {ev.seconds:.0f} s"
                                + (f" · {reused} reused from the store" if reused else ""))
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
