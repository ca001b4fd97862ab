"""Running the engine off the GUI thread.

:class:`RunWorker` lives in a ``QThread``; it iterates
:func:`engine.run.driver.run_experiment` and re-emits every event as a Qt signal. The signals
cross threads as queued connections, so the receivers (methods of GUI-thread QObjects)
run in the GUI thread; the worker never touches a widget and the GUI never touches a
tensor. Cancelling sets an :class:`engine.run.units.CancelToken`, which the runner checks
between attack steps.

:class:`BackgroundCall` runs one plain function in its own thread (metric scan, report).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.core.events import AttackStep, RunFinished, RunStarted
from engine.spec.experiment import Experiment


def lower_thread_priority(niceness: int = 10) -> bool:
    """Make the calling thread (and the compute threads it starts) yield the CPU to the
    GUI thread when the machine is busy. Linux/macOS only; a no-op elsewhere."""
    import threading

    if niceness <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
        return True
    except OSError:
        return False


class RunWorker(QObject):
    """Iterates one experiment in a worker thread and emits its events in batches.

    Every event reaches the GUI, in order, but attack steps are sent in batches (at most
    one batch per ``STEP_BATCH_S``) so a fast attack does not flood the GUI thread with
    one queued call per step; any other event flushes the batch first.

    Args:
        experiment: what to run; store_path: the store it writes to.
        backend: ``make_backend`` keyword arguments (``name``, ``address``, ``workers``);
            the back end is built here, in the worker thread (connecting to a cluster can
            block), never on the GUI thread.
    """

    STEP_BATCH_S = 0.03

    events = Signal(object)          # list of engine events, in order
    runError = Signal(str, bool)     # the run as a whole could not go on: one line; whether the user must act
    calibrated = Signal(object)      # the experiment with budget-calibrated attacks (before its events)
    notice = Signal(str, str)        # (level, text) for the log: calibration, a disk-space warning
    backendFailed = Signal(str)      # the back end could not start (a BackendError's message)
    done = Signal()                  # always last

    def __init__(self, experiment: Experiment, store_path: str | Path,
                 backend: dict[str, Any] | None = None) -> None:
        super().__init__()
        from engine.run.units import CancelToken

        self.experiment = experiment
        self.store_path = Path(store_path)
        self.backend_options = dict(backend or {"name": "local"})
        self.token = CancelToken()

    def cancel(self) -> None:
        """Thread-safe; may be called directly from the GUI thread."""
        self.token.cancel()

    def _backend(self) -> Any:
        from engine.run.backends import make_backend

        opts = self.backend_options
        return make_backend(opts.get("name") or "local", device=self.experiment.device,
                            address=opts.get("address"), workers=opts.get("workers"))

    def _prepare(self, store: Any, backend: Any) -> None:
        """The CLI's pre-run path (:func:`engine.run.prepare.prepare`), here in the worker
        thread: check, calibrate the attacks to the experiment's budget (presets kept next
        to the store) and warn when saved images will not fit on the disk."""
        from engine.run.prepare import prepare

        exp = self.experiment
        if exp.budget:
            self.notice.emit("info", f"calibrating the attacks to the budget {exp.budget}…")
        ready = prepare(exp, store, backend=backend, log=self._log_info)
        if exp.budget:
            self.experiment = ready.experiment
            self.calibrated.emit(ready.experiment)
        for warning in ready.warnings:
            self.notice.emit("warning", warning)

    def _log_info(self, text: str) -> None:
        self.notice.emit("info", text)

    def _store_news(self, store: Any, event: Any) -> list[Any]:
        """What the GUI needs from the store at this event, read here so the GUI thread
        reads nothing: after :class:`RunStarted`, what the store holds of the experiment
        (rows reused from other experiments or resumed, shown at once); after
        :class:`RunFinished`, the store's experiments."""
        from gui.stored_state import StoredList, read_stored

        try:
            if isinstance(event, RunStarted):
                return [read_stored(store, event.experiment_id, self.experiment)]
            if isinstance(event, RunFinished):
                return [StoredList(store.experiments())]
        except Exception as exc:  # noqa: BLE001 - the run goes on; the panels show what arrives
            self.notice.emit("warning", f"could not read the store: {exc}")
        return []

    @Slot()
    def run(self) -> None:
        lower_thread_priority(int(os.environ.get("IQA_LAB_WORKER_NICE", "5")))
        import time

        from engine.run.backends import BackendError
        from engine.run.driver import run_experiment
        from engine.store.db import ResultStore

        store = None
        steps: list[Any] = []
        last = time.monotonic()
        try:
            try:
                backend = self._backend()
            except BackendError as exc:
                self.backendFailed.emit(str(exc))
                self.events.emit([RunFinished(self.experiment.id, 0, 0, True, 0.0)])
                return
            store = ResultStore(self.store_path)
            self._prepare(store, backend)
            for event in run_experiment(self.experiment, store, cancel=self.token, backend=backend):
                if isinstance(event, AttackStep):
                    steps.append(event)
                    now = time.monotonic()
                    if now - last >= self.STEP_BATCH_S:
                        self.events.emit(steps)
                        steps, last = [], now
                    continue
                self.events.emit([*steps, event, *self._store_news(store, event)])
                steps, last = [], time.monotonic()
        except Exception as exc:  # noqa: BLE001 - reported in the log panel, never a crash
            from engine.core.errors import describe, needs_action

            message, code = describe(exc)  # the CLI's words; a bug's traceback is saved to a file
            self.runError.emit(message, needs_action(code))
            end = RunFinished(self.experiment.id, 0, 0, True, 0.0)
            self.events.emit([*steps, end, *(self._store_news(store, end) if store is not None else [])])
        finally:
            if store is not None:
                store.close()
            self.done.emit()


class WorkerThread(QObject):
    """Owns one worker object and the ``QThread`` it runs in (at most one at a time).

    A worker is a ``QObject`` with a ``run()`` slot, a ``done`` signal emitted last and a
    thread-safe ``cancel()``; :class:`RunWorker` and the FCN training worker are two.
    """

    stopped = Signal()  # the worker thread has ended (after the worker's last signal)

    def __init__(self, parent: QObject | None = None, name: str = "worker") -> None:
        super().__init__(parent)
        self.name = name
        self.thread: QThread | None = None
        self.worker: Any = None

    @property
    def running(self) -> bool:
        """A worker thread exists: from :meth:`start` until its end is handled here."""
        return self.thread is not None

    def start(self, worker: Any, connect: Callable[[Any], None] | None = None) -> Any:
        """Run ``worker`` in a new thread; ``connect(worker)`` wires its signals first."""
        if self.running:
            raise RuntimeError(f"{self.name}: already running")
        thread = QThread()
        thread.setObjectName(self.name)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.done.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        if connect is not None:
            connect(worker)
        self.thread, self.worker = thread, worker
        thread.start()
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def wait(self, ms: int = 60_000) -> bool:
        """Block until the worker thread ends (shutdown only)."""
        return self.thread.wait(ms) if self.thread is not None else True

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, worker = self.thread, self.worker
        self.thread = self.worker = None
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            thread.deleteLater()
        self.stopped.emit()


class BackgroundCall(QObject):
    """Run ``fn()`` in a thread; ``finished(result)`` or ``failed(message)`` in the GUI thread.

    Keep a reference to the object until one of its signals arrives.
    """

    finished = Signal(object)
    failed = Signal(str)

    class _Runner(QObject):
        result = Signal(object)
        error = Signal(str)

        def __init__(self, fn: Callable[[], Any]) -> None:
            super().__init__()
            self.fn = fn

        @Slot()
        def run(self) -> None:
            try:
                value = self.fn()
            except Exception as exc:  # noqa: BLE001
                self.error.emit(f"{type(exc).__name__}: {exc}")
            else:
                self.result.emit(value)
            finally:
                QThread.currentThread().quit()  # the thread ends by itself; nobody blocks on it

    def __init__(self, fn: Callable[[], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._runner = BackgroundCall._Runner(fn)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._runner.result.connect(self._on_result)
        self._runner.error.connect(self._on_error)

    #: calls whose thread runs: a caller may drop its reference (a newer request replaced
    #: it) without the running ``QThread`` being destroyed with the Python object
    _live: ClassVar[set[BackgroundCall]] = set()

    def start(self) -> BackgroundCall:
        BackgroundCall._live.add(self)
        self._thread.finished.connect(self._on_thread_finished)
        self._thread.start()
        return self

    @Slot()
    def _on_thread_finished(self) -> None:
        BackgroundCall._live.discard(self)

    def wait(self, ms: int = 30_000) -> bool:
        """Block until ``fn`` has returned, then deliver its result signal (tests, shutdown)."""
        from PySide6.QtCore import QCoreApplication

        ok = self._thread.wait(ms)
        QCoreApplication.sendPostedEvents(self, 0)
        QCoreApplication.processEvents()
        return ok

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    @Slot(object)
    def _on_result(self, value: Any) -> None:
        self.finished.emit(value)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self.failed.emit(message)


class BackgroundPool(QObject):
    """Runs plain functions off the GUI thread and keeps each call alive until it answers."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.calls: list[BackgroundCall] = []

    def call(self, fn: Callable[[], Any], on_result: Callable[[Any], None],
             on_error: Callable[[str], None]) -> BackgroundCall:
        """``fn()`` in a thread; its result or error goes to the two methods (of GUI-thread objects)."""
        call = BackgroundCall(fn, self)
        call.finished.connect(on_result)
        call.failed.connect(on_error)
        call.finished.connect(self._forget)
        call.failed.connect(self._forget)
        self.calls.append(call)
        return call.start()

    @Slot()
    def _forget(self, *_: Any) -> None:
        self.calls = [c for c in self.calls if c.running]

    def wait(self, ms: int = 30_000) -> None:
        for call in list(self.calls):
            call.wait(ms)
