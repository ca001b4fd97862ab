"""Tools → Train robust metric…: fine-tune a learned metric (AT, free AT, corrected AT, NT).

Pick a data set folder (mos.csv or a standard data set layout), the metric, the method and
the training settings; Start runs :func:`engine.training.robust.train_robust` in a worker
thread and plots, per epoch, the training loss, the validation SROCC/PLCC and the gain of
the fixed validation attack. Stop keeps what is saved, so Start again resumes. "Use as
metric" adds ``NAME:weights=FILE`` to the experiment's metrics (its own row in results).
"""
from __future__ import annotations

import math
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
    QVBoxLayout,
    QWidget,
)

from gui.curves import plain_axes
from gui.robust_training_worker import RobustTrainSettings, RobustTrainWorker
from gui.training_dialog import _path_row
from gui.worker import WorkerThread

METHOD_TEXT = {"none": "plain fine-tuning", "at": "adversarial training (AT)", "free-at": "free AT (Shafahi)",
               "at-corrected": "AT with corrected labels", "nt": "gradient-norm regularisation (NT)"}


class RobustTrainDialog(QDialog):
    """Non-modal training window; one per main window."""

    useMetric = Signal(str)  # a metric spec "NAME:weights=FILE" for the experiment

    def __init__(self, parent: QWidget | None = None) -> None:
        from engine.training.mos_formats import MOS_FORMATS

        super().__init__(parent)
        self.setWindowTitle("Train robust metric")
        self.setObjectName("robust_train_dialog")
        self.resize(820, 640)
        self.host = WorkerThread(self, "robust-train")
        self.host.stopped.connect(self._on_thread_finished)
        self.weights: str | None = None
        self.epochs_seen: list[int] = []
        self.losses: list[float] = []
        self.sroccs: list[float] = []
        self.plccs: list[float] = []
        self.gains: list[float] = []

        lay = QHBoxLayout(self)
        form_box = QWidget()
        form = QFormLayout(form_box)
        self.folder = QLineEdit()
        self.folder.setToolTip("Data set folder: images with mos.csv, or KonIQ-10k, KADID-10k, SPAQ, "
                               "LIVE Challenge, PIPAL, AGIQA-3K as downloaded")
        form.addRow("data set", _path_row(self.folder, self._browse_folder))
        self.mos_format = QComboBox()
        for f in MOS_FORMATS:
            self.mos_format.addItem(f, f)
        form.addRow("scores", self.mos_format)
        self.metric_box = QComboBox()
        self.metric_box.setEditable(True)
        self.metric_box.setToolTip("Differentiable learned metric to fine-tune (name or name:param=value)")
        form.addRow("metric", self.metric_box)
        self.method = QComboBox()
        for key, text in METHOD_TEXT.items():
            self.method.addItem(text, key)
        form.addRow("method", self.method)
        self.attack = QLineEdit()
        self.attack.setPlaceholderText("pgd:eps=4/255:alpha=1/255:iters=5")
        self.attack.setToolTip("Training attack of AT and corrected AT (any lab attack string)")
        form.addRow("attack", self.attack)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(10)
        form.addRow("epochs", self.epochs)
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setValue(8)
        form.addRow("batch size", self.batch)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-5)
        self.lr.setValue(1e-4)
        form.addRow("learning rate", self.lr)
        self.crop = QSpinBox()
        self.crop.setRange(8, 4096)
        self.crop.setValue(224)
        form.addRow("crop (px)", self.crop)
        self.val_attack_images = QSpinBox()
        self.val_attack_images.setRange(0, 10_000)
        self.val_attack_images.setValue(8)
        self.val_attack_images.setToolTip("Validation images attacked each epoch (I-FGSM ε 4/255); 0: none")
        form.addRow("attacked val. images", self.val_attack_images)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2_147_483_647)
        form.addRow("seed", self.seed)
        self.device = QComboBox()
        for label, value in (("auto", "auto"), ("CPU", "cpu"), ("CUDA", "cuda")):
            self.device.addItem(label, value)
        form.addRow("device", self.device)
        self.out = QLineEdit("robust.pt")
        self.out.setToolTip("Best weights to write; X.last.pt (resumable) and X.recipe.json beside it")
        form.addRow("weights", _path_row(self.out, self._browse_out))
        self.resume = QCheckBox("resume a stopped run with the same weights file")
        self.resume.setChecked(True)
        form.addRow("", self.resume)
        lay.addWidget(form_box, 0)

        right = QVBoxLayout()
        self.loss_plot, self.loss_curve = self._plot("train loss", "#d62728")
        self.corr_plot, self.srocc_curve = self._plot("validation SROCC / PLCC", "#1f77b4")
        self.plcc_curve = self.corr_plot.plot([], [], pen=pg.mkPen("#2ca02c", width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                                              symbol="t", symbolSize=5)
        self.gain_plot, self.gain_curve = self._plot("validation attack gain", "#9467bd")
        self.gain_plot.setLabel("bottom", "epoch")
        for plot in (self.corr_plot, self.gain_plot):
            plot.setXLink(self.loss_plot)
        for plot in (self.loss_plot, self.corr_plot, self.gain_plot):
            right.addWidget(plot, 1)
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        right.addWidget(self.progress)
        self.status = QLabel("Pick a data set folder and press Start.")
        self.status.setWordWrap(True)
        right.addWidget(self.status)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.use_button = QPushButton("Use as metric")
        self.use_button.setEnabled(False)
        self.use_button.setToolTip("Add NAME:weights=FILE to the experiment's metrics")
        self.use_button.clicked.connect(self._use)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        for b in (self.start_button, self.stop_button, self.use_button, close):
            buttons.addWidget(b)
        right.addLayout(buttons)
        lay.addLayout(right, 1)

    def _plot(self, title: str, colour: str) -> tuple[pg.PlotWidget, Any]:
        plot = pg.PlotWidget()
        plot.setLabel("left", title)
        plot.showGrid(x=True, y=True, alpha=0.25)
        plain_axes(plot)
        return plot, plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5)

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
        if output_dir and self.out.text() == "robust.pt":
            self.out.setText(str(Path(output_dir) / "robust.pt"))

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data set", self.folder.text() or str(Path.home()))
        if folder:
            self.folder.setText(folder)

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Robust weights", self.out.text(), "Weights (*.pt)")
        if path:
            self.out.setText(path)

    def settings(self) -> RobustTrainSettings:
        """The dialog's settings; raises ValueError with a user-facing message."""
        folder = self.folder.text().strip()
        if not folder or not Path(folder).is_dir():
            raise ValueError(f"not a folder: {folder!r}" if folder else "pick a data set folder")
        metric = self.metric_box.currentText().strip()
        if not metric:
            raise ValueError("pick a metric")
        return RobustTrainSettings(
            folder=folder, metric=metric, checkpoint_path=self.out.text().strip() or "robust.pt",
            method=self.method.currentData(), mos_format=self.mos_format.currentData(),
            attack=self.attack.text().strip() or None, epochs=self.epochs.value(), batch_size=self.batch.value(),
            lr=self.lr.value(), seed=self.seed.value(), crop_size=self.crop.value(),
            val_attack_images=self.val_attack_images.value(), device=self.device.currentData(),
            resume=self.resume.isChecked())

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
        self.epochs_seen, self.losses, self.sroccs, self.plccs, self.gains = [], [], [], [], []
        self._redraw()
        self.host.start(RobustTrainWorker(s), self._connect)
        self._set_running(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat("preparing…")
        self.status.setText(f"fine-tuning {s.metric} ({METHOD_TEXT[s.method]}) on {s.folder}…")
        return True

    def _connect(self, worker: RobustTrainWorker) -> None:
        worker.history.connect(self.on_history)
        worker.epochDone.connect(self.on_epoch)
        worker.finished.connect(self.on_finished)
        worker.stopped.connect(self.on_stopped)
        worker.failed.connect(self.on_failed)

    @Slot()
    def stop(self) -> None:
        if self.running:
            self.host.cancel()
            self.status.setText("stopping after the current epoch…")
            self.stop_button.setEnabled(False)

    def wait(self, ms: int = 60_000) -> bool:
        return self.host.wait(ms)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for w in (self.folder, self.mos_format, self.metric_box, self.method, self.attack, self.epochs, self.batch,
                  self.lr, self.crop, self.val_attack_images, self.seed, self.device, self.out, self.resume):
            w.setEnabled(not running)

    # ---- worker signals (GUI thread) -----------------------------------------------------
    def _append(self, epoch: int, loss: float, srocc: float, plcc: float, gain: float) -> None:
        self.epochs_seen.append(epoch)
        self.losses.append(loss)
        self.sroccs.append(srocc)
        self.plccs.append(plcc)
        self.gains.append(gain)

    @Slot(object)
    def on_history(self, history: list[dict[str, Any]]) -> None:
        for h in history:
            self._append(int(h["epoch"]), float(h["train_loss"]), float(h["val_srocc"]), float(h["val_plcc"]),
                         float(h["val_gain"]))
        self._redraw()

    @Slot(object)
    def on_epoch(self, step: Any) -> None:
        self._append(step.epoch, step.train_loss, step.val_srocc, step.val_plcc, step.val_gain)
        self._redraw()
        self.progress.setRange(0, max(step.epochs, 1))
        self.progress.setValue(step.epoch)
        self.progress.setFormat(f"epoch {step.epoch}/{step.epochs}")
        best = "  ★ new best, saved" if step.best else ""
        self.status.setText(f"epoch {step.epoch}: loss {step.train_loss:.5f}, SROCC {step.val_srocc:.4f}, "
                            f"PLCC {step.val_plcc:.4f}, attack gain {step.val_gain:.4f}{best}")
        if step.best:
            self._offer(self.out.text().strip() or "robust.pt")

    @Slot(str)
    def on_finished(self, path: str) -> None:
        self._offer(path)
        self.status.setText(f"done: weights {path} (load as {self._spec() or '…'})")
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
        self.srocc_curve.setData(self.epochs_seen, self.sroccs)
        self.plcc_curve.setData(self.epochs_seen, self.plccs)
        keep = [(e, g) for e, g in zip(self.epochs_seen, self.gains) if not math.isnan(g)]  # NaN: none attacked
        self.gain_curve.setData([e for e, _ in keep], [g for _, g in keep])

    def _offer(self, path: str) -> None:
        if Path(path).is_file():
            self.weights = str(Path(path).resolve())
            self.use_button.setEnabled(True)

    def _spec(self) -> str | None:
        """``NAME:weights=FILE`` (the metric's other parameters kept, ``pretrained`` dropped)."""
        if not self.weights:
            return None
        from engine.spec.experiment import ComponentSpec

        spec = ComponentSpec.parse(self.metric_box.currentText().strip())
        params = {k: v for k, v in spec.params.items() if k not in ("weights", "pretrained")}
        return ":".join([spec.name, *(f"{k}={v}" for k, v in params.items()), f"weights={self.weights}"])

    @Slot()
    def _use(self) -> None:
        spec = self._spec()
        if spec:
            self.useMetric.emit(spec)
