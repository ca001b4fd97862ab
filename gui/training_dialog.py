"""Tools → Train FCN filter…: the paper's FCN purifier trained from the app.

Pick a folder, the metric and the attack that make the (attacked, clean) pairs, and the
training settings; Start runs :func:`engine.training.train_fcn` in a worker thread and
plots the training loss and validation SSIM per epoch as they arrive. Stop keeps what
is saved (best checkpoint + resumable state), so Start again resumes, the plot showing
the earlier epochs too. When a checkpoint exists, "Use as defence" ticks the ``fcn``
defence with it in the experiment panel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Signal, Slot
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
from gui.training_worker import FCNTrainWorker, TrainSettings
from gui.worker import WorkerThread


def _path_row(edit: QLineEdit, browse: Any) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    button = QToolButton()
    button.setText("…")
    button.clicked.connect(browse)
    row.addWidget(button)
    return row


class FCNTrainDialog(QDialog):
    """Non-modal training window; one per main window."""

    useCheckpoint = Signal(str)  # the user wants this checkpoint as the fcn defence

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train FCN filter")
        self.setObjectName("fcn_train_dialog")
        self.resize(760, 560)
        self.host = WorkerThread(self, "fcn-train")
        self.host.stopped.connect(self._on_thread_finished)
        self.checkpoint: str | None = None
        self.epochs_seen: list[int] = []
        self.losses: list[float] = []
        self.ssims: list[float] = []

        lay = QHBoxLayout(self)
        form_box = QWidget()
        form = QFormLayout(form_box)
        self.folder = QLineEdit()
        self.folder.setObjectName("train_folder")
        self.folder.setToolTip("Folder of clean training images (searched recursively)")
        form.addRow("images", _path_row(self.folder, self._browse_folder))
        self.metric_box = QComboBox()
        self.metric_box.setObjectName("train_metric")
        self.metric_box.setEditable(True)
        self.metric_box.setToolTip("Metric the attack raises to make the training pairs (the paper: Linearity)")
        form.addRow("metric", self.metric_box)
        self.attack = QLineEdit()
        self.attack.setObjectName("train_attack")
        self.attack.setPlaceholderText("advcf (the paper's)")
        self.attack.setToolTip("Attack making the pairs: name, name[preset] or name:param=value, "
                               "e.g. ifgsm:eps=4/255. Empty: AdvCF, as in the paper")
        form.addRow("attack", self.attack)
        self.epochs = QSpinBox()
        self.epochs.setObjectName("train_epochs")
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(200)
        form.addRow("epochs", self.epochs)
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setValue(4)
        form.addRow("batch size", self.batch)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        form.addRow("learning rate", self.lr)
        self.val_split = QDoubleSpinBox()
        self.val_split.setRange(0.05, 0.95)
        self.val_split.setSingleStep(0.05)
        self.val_split.setValue(0.2)
        form.addRow("validation share", self.val_split)
        self.crop = QSpinBox()
        self.crop.setObjectName("train_crop")
        self.crop.setRange(8, 4096)
        self.crop.setValue(128)
        form.addRow("crop (px)", self.crop)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2_147_483_647)
        form.addRow("seed", self.seed)
        self.device = QComboBox()
        for label, value in (("auto", "auto"), ("CPU", "cpu"), ("CUDA", "cuda")):
            self.device.addItem(label, value)
        form.addRow("device", self.device)
        self.out = QLineEdit("fcn.pt")
        self.out.setObjectName("train_out")
        self.out.setToolTip("Best checkpoint to write; X.last.pt beside it holds the resumable state")
        form.addRow("checkpoint", _path_row(self.out, self._browse_out))
        self.resume = QCheckBox("resume a stopped run with the same checkpoint")
        self.resume.setObjectName("train_resume")
        self.resume.setChecked(True)
        form.addRow("", self.resume)
        lay.addWidget(form_box, 0)

        right = QVBoxLayout()
        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setObjectName("train_loss_plot")
        self.loss_plot.setLabel("left", "train MSE")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.25)
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=5)
        self.ssim_plot = pg.PlotWidget()
        self.ssim_plot.setObjectName("train_ssim_plot")
        self.ssim_plot.setLabel("left", "validation SSIM")
        self.ssim_plot.setLabel("bottom", "epoch")
        self.ssim_plot.showGrid(x=True, y=True, alpha=0.25)
        self.ssim_plot.setXLink(self.loss_plot)
        self.ssim_curve = self.ssim_plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=5)
        for plot in (self.loss_plot, self.ssim_plot):
            plain_axes(plot)
        right.addWidget(self.loss_plot, 1)
        right.addWidget(self.ssim_plot, 1)
        self.progress = QProgressBar()
        self.progress.setObjectName("train_progress")
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        right.addWidget(self.progress)
        self.status = QLabel("Pick a folder and press Start.")
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
        self.use_button = QPushButton("Use as defence")
        self.use_button.setObjectName("train_use")
        self.use_button.setEnabled(False)
        self.use_button.setToolTip("Tick the fcn defence with this checkpoint in the experiment panel")
        self.use_button.clicked.connect(self._use)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        for b in (self.start_button, self.stop_button, self.use_button, close):
            buttons.addWidget(b)
        right.addLayout(buttons)
        lay.addLayout(right, 1)

    # ---- set-up --------------------------------------------------------------------------
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
        if output_dir and self.out.text() == "fcn.pt":
            self.out.setText(str(Path(output_dir) / "fcn.pt"))

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training images", self.folder.text() or str(Path.home()))
        if folder:
            self.folder.setText(folder)

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "FCN checkpoint", self.out.text(), "Checkpoints (*.pt)")
        if path:
            self.out.setText(path)

    def settings(self) -> TrainSettings:
        """The dialog's settings; raises ValueError with a user-facing message."""
        folder = self.folder.text().strip()
        if not folder or not Path(folder).is_dir():
            raise ValueError(f"not a folder: {folder!r}" if folder else "pick a folder of training images")
        metric = self.metric_box.currentText().strip()
        if not metric:
            raise ValueError("pick a metric")
        out = self.out.text().strip() or "fcn.pt"
        return TrainSettings(folder=folder, metric=metric, checkpoint_path=out, attack=self.attack.text().strip() or None,
                             epochs=self.epochs.value(), batch_size=self.batch.value(), lr=self.lr.value(),
                             val_split=self.val_split.value(), seed=self.seed.value(), crop_size=self.crop.value(),
                             device=self.device.currentData(), resume=self.resume.isChecked())

    # ---- run -----------------------------------------------------------------------------
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
        self.epochs_seen, self.losses, self.ssims = [], [], []
        self._redraw()
        self.host.start(FCNTrainWorker(s), self._connect)
        self._set_running(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat("making training pairs…")
        self.status.setText(f"attacking the images of {s.folder} with {s.attack or 'advcf'} against {s.metric}…")
        return True

    def _connect(self, worker: FCNTrainWorker) -> None:
        # bound methods of this GUI-thread dialog: queued, they run in the GUI thread
        worker.history.connect(self.on_history)
        worker.pairMade.connect(self.on_pair)
        worker.epochDone.connect(self.on_epoch)
        worker.finished.connect(self.on_finished)
        worker.stopped.connect(self.on_stopped)
        worker.failed.connect(self.on_failed)

    @Slot()
    def stop(self) -> None:
        if self.running:
            self.host.cancel()
            self.status.setText("stopping after the current step…")
            self.stop_button.setEnabled(False)

    def wait(self, ms: int = 60_000) -> bool:
        return self.host.wait(ms)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for w in (self.folder, self.metric_box, self.attack, self.epochs, self.batch, self.lr, self.val_split,
                  self.crop, self.seed, self.device, self.out, self.resume):
            w.setEnabled(not running)

    # ---- worker signals (GUI thread) -----------------------------------------------------
    @Slot(object)
    def on_history(self, history: list[dict[str, Any]]) -> None:
        for h in history:
            self.epochs_seen.append(int(h["epoch"]))
            self.losses.append(float(h["train_loss"]))
            self.ssims.append(float(h["val_ssim"]))
        self._redraw()

    @Slot(object)
    def on_pair(self, progress: tuple[int, int, str]) -> None:
        done, total, name = progress
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"pairs {done}/{total}")
        self.status.setText(f"attacked {name}")

    @Slot(object)
    def on_epoch(self, step: Any) -> None:
        self.epochs_seen.append(step.epoch)
        self.losses.append(step.train_loss)
        self.ssims.append(step.val_ssim)
        self._redraw()
        self.progress.setRange(0, max(step.epochs, 1))
        self.progress.setValue(step.epoch)
        self.progress.setFormat(f"epoch {step.epoch}/{step.epochs}")
        best = "  ★ new best, saved" if step.best else ""
        self.status.setText(f"epoch {step.epoch}: train MSE {step.train_loss:.5f}, validation SSIM "
                            f"{step.val_ssim:.4f} (best {step.best_val_ssim:.4f}){best}")
        if step.best:
            self._offer(self.out.text().strip() or "fcn.pt")

    @Slot(str)
    def on_finished(self, path: str) -> None:
        self._offer(path)
        best = max(self.ssims) if self.ssims else float("nan")
        self.status.setText(f"done: best validation SSIM {best:.4f}; checkpoint {path}")
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

    # ---- results -------------------------------------------------------------------------
    def _redraw(self) -> None:
        self.loss_curve.setData(self.epochs_seen, self.losses)
        self.ssim_curve.setData(self.epochs_seen, self.ssims)

    def _offer(self, path: str) -> None:
        if Path(path).is_file():
            self.checkpoint = str(Path(path).resolve())
            self.use_button.setEnabled(True)

    @Slot()
    def _use(self) -> None:
        if self.checkpoint:
            self.useCheckpoint.emit(self.checkpoint)
