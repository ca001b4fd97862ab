"""What the two training windows share: the settings form's common rows, the plots' look,
Start/Stop/Use/Close, the progress bar and status line, and the worker's outcome signals.

A subclass (:class:`gui.training_dialog.FCNTrainDialog`,
:class:`gui.robust_training_dialog.RobustTrainDialog`) adds its own form rows and plots,
names its worker and the per-epoch series it plots, and says what "Use" does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pyqtgraph as pg
from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.curves import plain_axes
from gui.worker import WorkerThread


def path_row(edit: QLineEdit, browse: Any) -> QHBoxLayout:
    """A path field with a "…" button that calls ``browse``."""
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    button = QToolButton()
    button.setText("…")
    button.clicked.connect(browse)
    row.addWidget(button)
    return row


def spin(low: int, high: int, value: int, name: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    if name:
        box.setObjectName(name)
    return box


def training_plot(title: str, colour: str, symbol: str = "o") -> tuple[pg.PlotWidget, Any]:
    """A per-epoch plot with one curve (more: ``plot.plot``)."""
    plot = pg.PlotWidget()
    plot.setLabel("left", title)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plain_axes(plot)
    return plot, plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol=symbol, symbolSize=5)


class TrainDialogBase(QDialog):
    """A non-modal training window: settings on the left, per-epoch plots on the right.

    Class attributes a subclass sets: ``TITLE``, ``NAME`` (object name), ``SIZE``,
    ``THREAD``, ``FOLDER`` (label, tooltip, browse title), ``OUT`` (default file name,
    tooltip, browse title, filter), ``DEFAULTS`` (epochs, batch, learning rate and its step,
    crop), ``SERIES`` (the step's per-epoch values plotted), ``USE`` (button text, tooltip),
    ``IDLE`` (status at first), ``STOPPING``. It implements :meth:`_add_fields`,
    :meth:`_add_more_fields`, :meth:`_add_plots`, :meth:`settings`, :meth:`_worker`,
    :meth:`_starting`, :meth:`_epoch_text`, :meth:`_finished_text`, :meth:`_redraw`, :meth:`_use`.
    """

    TITLE: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    SIZE: ClassVar[tuple[int, int]] = (760, 560)
    THREAD: ClassVar[str] = "train"
    FOLDER: ClassVar[tuple[str, str, str]] = ("images", "", "Images")
    OUT: ClassVar[tuple[str, str, str, str]] = ("model.pt", "", "Weights", "Weights (*.pt)")
    DEFAULTS: ClassVar[dict[str, float]] = {}
    SERIES: ClassVar[tuple[str, ...]] = ("train_loss",)
    USE: ClassVar[tuple[str, str]] = ("Use", "")
    IDLE: ClassVar[str] = "Pick a folder and press Start."
    STOPPING: ClassVar[str] = "stopping after the current epoch…"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.TITLE)
        self.setObjectName(self.NAME)
        self.resize(*self.SIZE)
        self.host = WorkerThread(self, self.THREAD)
        self.host.stopped.connect(self._on_thread_finished)
        self.result_path: str | None = None
        self.epochs_seen: list[int] = []
        self.values: dict[str, list[float]] = {k: [] for k in self.SERIES}
        self.inputs: list[QWidget] = []

        lay = QHBoxLayout(self)
        form_box = QWidget()
        form = QFormLayout(form_box)
        self.folder = QLineEdit()
        self.folder.setObjectName("train_folder")
        self.folder.setToolTip(self.FOLDER[1])
        form.addRow(self.FOLDER[0], path_row(self.folder, self._browse_folder))
        self._add_fields(form)
        d = self.DEFAULTS
        self.epochs = spin(1, 100_000, int(d.get("epochs", 10)), "train_epochs")
        form.addRow("epochs", self.epochs)
        self.batch = spin(1, 1024, int(d.get("batch", 4)))
        form.addRow("batch size", self.batch)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(d.get("lr_step", 1e-4))
        self.lr.setValue(d.get("lr", 1e-3))
        form.addRow("learning rate", self.lr)
        self.crop = spin(8, 4096, int(d.get("crop", 128)), "train_crop")
        self._add_more_fields(form)
        self.seed = spin(0, 2_147_483_647, 0)
        form.addRow("seed", self.seed)
        self.device = QComboBox()
        for label, value in (("auto", "auto"), ("CPU", "cpu"), ("CUDA", "cuda")):
            self.device.addItem(label, value)
        form.addRow("device", self.device)
        self.out = QLineEdit(self.OUT[0])
        self.out.setObjectName("train_out")
        self.out.setToolTip(self.OUT[1])
        form.addRow(self.OUT[2].lower(), path_row(self.out, self._browse_out))
        self.resume = QCheckBox(f"resume a stopped run with the same {self.OUT[2].lower()} file")
        self.resume.setObjectName("train_resume")
        self.resume.setChecked(True)
        form.addRow("", self.resume)
        lay.addWidget(form_box, 0)
        self.inputs += [self.folder, self.epochs, self.batch, self.lr, self.crop, self.seed, self.device, self.out,
                        self.resume]

        right = QVBoxLayout()
        self._add_plots(right)
        self.progress = QProgressBar()
        self.progress.setObjectName("train_progress")
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        right.addWidget(self.progress)
        self.status = QLabel(self.IDLE)
        self.status.setObjectName("train_status")
        self.status.setWordWrap(True)
        right.addWidget(self.status)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("train_start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("train_stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.use_button = QPushButton(self.USE[0])
        self.use_button.setObjectName("train_use")
        self.use_button.setEnabled(False)
        self.use_button.setToolTip(self.USE[1])
        self.use_button.clicked.connect(self._use)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        for b in (self.start_button, self.stop_button, self.use_button, close):
            buttons.addWidget(b)
        right.addLayout(buttons)
        lay.addLayout(right, 1)

    # ---- what a subclass adds ------------------------------------------------------------
    def _add_fields(self, form: QFormLayout) -> None:
        """Rows between the folder and the epochs (append their widgets to ``inputs``)."""

    def _add_more_fields(self, form: QFormLayout) -> None:
        """Rows between the learning rate and the seed (``self.crop`` is made, not placed)."""

    def _add_plots(self, right: QVBoxLayout) -> None:
        """The per-epoch plots."""

    def settings(self) -> Any:
        """The worker's settings; raises ValueError with a user-facing message."""
        raise NotImplementedError

    def _worker(self, settings: Any) -> Any:
        raise NotImplementedError

    def _starting(self, settings: Any) -> tuple[str, str]:
        """(progress text, status text) while the worker prepares."""
        return "preparing…", ""

    def _epoch_text(self, step: Any) -> str:
        raise NotImplementedError

    def _finished_text(self, path: str) -> str:
        return f"done: {path}"

    def _redraw(self) -> None:
        raise NotImplementedError

    def _use(self) -> None:
        raise NotImplementedError

    def _connect_more(self, worker: Any) -> None:
        """Extra progress signals of the worker (bound methods of this dialog only)."""

    # ---- shared --------------------------------------------------------------------------
    def prefill(self, folder: str | None, metrics: list[str], output_dir: str | None) -> None:
        """Offer the main window's folder, metrics and output folder (only while idle)."""
        if self.running:
            return
        if folder and not self.folder.text():
            self.folder.setText(folder)
        current = self.metric_box.currentText()
        self.metric_box.clear()
        self.metric_box.addItems(metrics)
        self.metric_box.setCurrentText(current or (metrics[0] if metrics else "linearity"))
        if output_dir and self.out.text() == self.OUT[0]:
            self.out.setText(str(Path(output_dir) / self.OUT[0]))

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.FOLDER[2], self.folder.text() or str(Path.home()))
        if folder:
            self.folder.setText(folder)

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.OUT[2], self.out.text(), self.OUT[3])
        if path:
            self.out.setText(path)

    def _folder_and_metric(self, missing: str) -> tuple[str, str]:
        """The folder (must exist) and the metric; ValueError with ``missing`` when no folder."""
        folder = self.folder.text().strip()
        if not folder or not Path(folder).is_dir():
            raise ValueError(f"not a folder: {folder!r}" if folder else missing)
        metric = self.metric_box.currentText().strip()
        if not metric:
            raise ValueError("pick a metric")
        return folder, metric

    @property
    def running(self) -> bool:
        return self.host.running

    @Slot()
    def start(self) -> bool:
        if self.running:
            return False
        try:
            s = self.settings()
        except ValueError as exc:
            self.status.setText(str(exc))
            return False
        Path(s.checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
        self.epochs_seen = []
        self.values = {k: [] for k in self.SERIES}
        self._redraw()
        self.host.start(self._worker(s), self._connect)
        self._set_running(True)
        self.progress.setRange(0, 0)
        busy, text = self._starting(s)
        self.progress.setFormat(busy)
        self.status.setText(text)
        return True

    def _connect(self, worker: Any) -> None:
        # bound methods of this GUI-thread dialog: queued, they run in the GUI thread
        worker.history.connect(self.on_history)
        worker.epochDone.connect(self.on_epoch)
        worker.finished.connect(self.on_finished)
        worker.stopped.connect(self.on_stopped)
        worker.failed.connect(self.on_failed)
        self._connect_more(worker)

    @Slot()
    def stop(self) -> None:
        if self.running:
            self.host.cancel()
            self.status.setText(self.STOPPING)
            self.stop_button.setEnabled(False)

    def wait(self, ms: int = 60_000) -> bool:
        return self.host.wait(ms)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for w in self.inputs:
            w.setEnabled(not running)

    # ---- worker signals (GUI thread) -----------------------------------------------------
    @Slot(object)
    def on_history(self, history: list[dict[str, Any]]) -> None:
        for h in history:
            self.epochs_seen.append(int(h["epoch"]))
            for key in self.SERIES:
                self.values[key].append(float(h[key]))
        self._redraw()

    @Slot(object)
    def on_epoch(self, step: Any) -> None:
        self.epochs_seen.append(step.epoch)
        for key in self.SERIES:
            self.values[key].append(float(getattr(step, key)))
        self._redraw()
        self.progress.setRange(0, max(step.epochs, 1))
        self.progress.setValue(step.epoch)
        self.progress.setFormat(f"epoch {step.epoch}/{step.epochs}")
        self.status.setText(self._epoch_text(step) + ("  ★ new best, saved" if step.best else ""))
        if step.best:
            self._offer(self.out.text().strip() or self.OUT[0])

    @Slot(str)
    def on_finished(self, path: str) -> None:
        self._offer(path)
        self.status.setText(self._finished_text(path))
        self.progress.setFormat("done")

    @Slot(str)
    def on_stopped(self, message: str) -> None:
        self.status.setText(message)
        self.progress.setFormat("stopped")

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.status.setText(f"training failed: {message}")
        self.progress.setFormat("failed")

    @Slot()
    def _on_thread_finished(self) -> None:
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self._set_running(False)

    def _offer(self, path: str) -> None:
        if Path(path).is_file():
            self.result_path = str(Path(path).resolve())
            self.use_button.setEnabled(True)
