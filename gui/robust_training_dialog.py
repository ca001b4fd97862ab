"""Tools → Train robust metric…: fine-tune a learned metric (AT, free AT, corrected AT, NT).

Pick a data set folder (mos.csv or a standard data set layout), the metric, the method and
the training settings; Start runs :func:`engine.training.robust.train_robust` in a worker
thread and plots, per epoch, the training loss, the validation SROCC/PLCC and the gain of
the fixed validation attack. Stop keeps what is saved, so Start again resumes. "Use as
metric" adds ``NAME:weights=FILE`` to the experiment's metrics (its own row in results).
The window itself is :class:`gui.training_dialog_base.TrainDialogBase`.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import pyqtgraph as pg
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QFormLayout, QLineEdit, QVBoxLayout

from gui.robust_training_worker import RobustTrainSettings, RobustTrainWorker
from gui.training_dialog_base import TrainDialogBase, spin, training_plot

METHOD_TEXT = {"none": "plain fine-tuning", "at": "adversarial training (AT)", "free-at": "free AT (Shafahi)",
               "at-corrected": "AT with corrected labels", "nt": "gradient-norm regularisation (NT)"}


class RobustTrainDialog(TrainDialogBase):
    """Non-modal robust-metric training window; one per main window."""

    useMetric = Signal(str)  # a metric spec "NAME:weights=FILE" for the experiment

    TITLE, NAME, SIZE, THREAD = "Train robust metric", "robust_train_dialog", (820, 640), "robust-train"
    FOLDER = ("data set", ("Data set folder: images with mos.csv, or KonIQ-10k, KADID-10k, SPAQ, LIVE Challenge, "
                           "PIPAL, AGIQA-3K as downloaded"), "Data set")
    OUT = ("robust.pt", "Best weights to write; X.last.pt (resumable) and X.recipe.json beside it", "Weights",
           "Weights (*.pt)")
    DEFAULTS: ClassVar[dict[str, float]] = {"epochs": 10, "batch": 8, "lr": 1e-4, "lr_step": 1e-5, "crop": 224}
    SERIES = ("train_loss", "val_srocc", "val_plcc", "val_gain")
    USE = ("Use as metric", "Add NAME:weights=FILE to the experiment's metrics")
    IDLE = "Pick a data set folder and press Start."

    def _add_fields(self, form: QFormLayout) -> None:
        from engine.training.mos_formats import MOS_FORMATS

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
        self.inputs += [self.mos_format, self.metric_box, self.method, self.attack]

    def _add_more_fields(self, form: QFormLayout) -> None:
        form.addRow("crop (px)", self.crop)
        self.val_attack_images = spin(0, 10_000, 8)
        self.val_attack_images.setToolTip("Validation images attacked each epoch (I-FGSM ε 4/255); 0: none")
        form.addRow("attacked val. images", self.val_attack_images)
        self.inputs.append(self.val_attack_images)

    def _add_plots(self, right: QVBoxLayout) -> None:
        self.loss_plot, self.loss_curve = training_plot("train loss", "#d62728")
        self.corr_plot, self.srocc_curve = training_plot("validation SROCC / PLCC", "#1f77b4")
        self.plcc_curve = self.corr_plot.plot([], [], pen=pg.mkPen("#2ca02c", width=2,
                                                                   style=pg.QtCore.Qt.PenStyle.DashLine),
                                              symbol="t", symbolSize=5)
        self.gain_plot, self.gain_curve = training_plot("validation attack gain", "#9467bd")
        self.gain_plot.setLabel("bottom", "epoch")
        for plot in (self.corr_plot, self.gain_plot):
            plot.setXLink(self.loss_plot)
        for plot in (self.loss_plot, self.corr_plot, self.gain_plot):
            right.addWidget(plot, 1)

    def settings(self) -> RobustTrainSettings:
        """The dialog's settings; raises ValueError with a user-facing message."""
        folder, metric = self._folder_and_metric("pick a data set folder")
        return RobustTrainSettings(
            folder=folder, metric=metric, checkpoint_path=self.out.text().strip() or self.OUT[0],
            method=self.method.currentData(), mos_format=self.mos_format.currentData(),
            attack=self.attack.text().strip() or None, epochs=self.epochs.value(), batch_size=self.batch.value(),
            lr=self.lr.value(), seed=self.seed.value(), crop_size=self.crop.value(),
            val_attack_images=self.val_attack_images.value(), device=self.device.currentData(),
            resume=self.resume.isChecked())

    def _worker(self, settings: RobustTrainSettings) -> RobustTrainWorker:
        return RobustTrainWorker(settings)

    def _starting(self, s: RobustTrainSettings) -> tuple[str, str]:
        return "preparing…", f"fine-tuning {s.metric} ({METHOD_TEXT[s.method]}) on {s.folder}…"

    def _epoch_text(self, step: Any) -> str:
        return (f"epoch {step.epoch}: loss {step.train_loss:.5f}, SROCC {step.val_srocc:.4f}, "
                f"PLCC {step.val_plcc:.4f}, attack gain {step.val_gain:.4f}")

    def _finished_text(self, path: str) -> str:
        return f"done: weights {path} (load as {self._spec() or '…'})"

    def _redraw(self) -> None:
        v = self.values
        self.loss_curve.setData(self.epochs_seen, v["train_loss"])
        self.srocc_curve.setData(self.epochs_seen, v["val_srocc"])
        self.plcc_curve.setData(self.epochs_seen, v["val_plcc"])
        keep = [(e, g) for e, g in zip(self.epochs_seen, v["val_gain"]) if not math.isnan(g)]  # NaN: none attacked
        self.gain_curve.setData([e for e, _ in keep], [g for _, g in keep])

    def _spec(self) -> str | None:
        """``NAME:weights=FILE`` (the metric's other parameters kept, ``pretrained`` dropped)."""
        if not self.result_path:
            return None
        from engine.spec.experiment import ComponentSpec

        spec = ComponentSpec.parse(self.metric_box.currentText().strip())
        params = {k: v for k, v in spec.params.items() if k not in ("weights", "pretrained")}
        return ":".join([spec.name, *(f"{k}={v}" for k, v in params.items()), f"weights={self.result_path}"])

    @Slot()
    def _use(self) -> None:
        spec = self._spec()
        if spec:
            self.useMetric.emit(spec)
