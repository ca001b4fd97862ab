"""Tools → Train FCN filter…: the paper's FCN purifier trained from the app.

Pick a folder, the metric and the attack that make the (attacked, clean) pairs, and the
training settings; Start runs :func:`engine.training.train_fcn` in a worker thread and
plots the training loss and validation SSIM per epoch as they arrive. Stop keeps what
is saved (best checkpoint + resumable state), so Start again resumes, the plot showing
the earlier epochs too. When a checkpoint exists, "Use as defence" ticks the ``fcn``
defence with it in the experiment panel. The window itself is
:class:`gui.training_dialog_base.TrainDialogBase`.
"""
from __future__ import annotations

from typing import Any, ClassVar

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QVBoxLayout,
)

from gui.training_dialog_base import TrainDialogBase, training_plot
from gui.training_worker import FCNTrainWorker, TrainSettings


class FCNTrainDialog(TrainDialogBase):
    """Non-modal FCN training window; one per main window."""

    useCheckpoint = Signal(str)  # the user wants this checkpoint as the fcn defence

    TITLE, NAME, SIZE, THREAD = "Train FCN filter", "fcn_train_dialog", (760, 560), "fcn-train"
    FOLDER = ("images", "Folder of clean training images (searched recursively)", "Training images")
    OUT = ("fcn.pt", "Best checkpoint to write; X.last.pt beside it holds the resumable state", "Checkpoint",
           "Checkpoints (*.pt)")
    DEFAULTS: ClassVar[dict[str, float]] = {"epochs": 200, "batch": 4, "lr": 1e-3, "lr_step": 1e-4, "crop": 128}
    SERIES = ("train_loss", "val_ssim")
    USE = ("Use as defence", "Tick the fcn defence with this checkpoint in the experiment panel")
    STOPPING = "stopping after the current step…"

    def _add_fields(self, form: QFormLayout) -> None:
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
        self.inputs += [self.metric_box, self.attack]

    def _add_more_fields(self, form: QFormLayout) -> None:
        self.val_split = QDoubleSpinBox()
        self.val_split.setRange(0.05, 0.95)
        self.val_split.setSingleStep(0.05)
        self.val_split.setValue(0.2)
        form.addRow("validation share", self.val_split)
        form.addRow("crop (px)", self.crop)
        self.inputs.append(self.val_split)

    def _add_plots(self, right: QVBoxLayout) -> None:
        self.loss_plot, self.loss_curve = training_plot("train MSE", "#d62728")
        self.loss_plot.setObjectName("train_loss_plot")
        self.ssim_plot, self.ssim_curve = training_plot("validation SSIM", "#1f77b4")
        self.ssim_plot.setObjectName("train_ssim_plot")
        self.ssim_plot.setLabel("bottom", "epoch")
        self.ssim_plot.setXLink(self.loss_plot)
        right.addWidget(self.loss_plot, 1)
        right.addWidget(self.ssim_plot, 1)

    def settings(self) -> TrainSettings:
        """The dialog's settings; raises ValueError with a user-facing message."""
        folder, metric = self._folder_and_metric("pick a folder of training images")
        return TrainSettings(folder=folder, metric=metric, checkpoint_path=self.out.text().strip() or self.OUT[0],
                             attack=self.attack.text().strip() or None, epochs=self.epochs.value(),
                             batch_size=self.batch.value(), lr=self.lr.value(), val_split=self.val_split.value(),
                             seed=self.seed.value(), crop_size=self.crop.value(), device=self.device.currentData(),
                             resume=self.resume.isChecked())

    def _worker(self, settings: TrainSettings) -> FCNTrainWorker:
        return FCNTrainWorker(settings)

    def _connect_more(self, worker: FCNTrainWorker) -> None:
        worker.pairMade.connect(self.on_pair)

    def _starting(self, s: TrainSettings) -> tuple[str, str]:
        return "making training pairs…", f"attacking the images of {s.folder} with {s.attack or 'advcf'} against {s.metric}…"

    @Slot(object)
    def on_pair(self, progress: tuple[int, int, str]) -> None:
        done, total, name = progress
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"pairs {done}/{total}")
        self.status.setText(f"attacked {name}")

    def _epoch_text(self, step: Any) -> str:
        return (f"epoch {step.epoch}: train MSE {step.train_loss:.5f}, validation SSIM {step.val_ssim:.4f} "
                f"(best {step.best_val_ssim:.4f})")

    def _finished_text(self, path: str) -> str:
        ssims = self.values["val_ssim"]
        return f"done: best validation SSIM {max(ssims) if ssims else float('nan'):.4f}; checkpoint {path}"

    def _redraw(self) -> None:
        self.loss_curve.setData(self.epochs_seen, self.values["train_loss"])
        self.ssim_curve.setData(self.epochs_seen, self.values["val_ssim"])

    @Slot()
    def _use(self) -> None:
        if self.result_path:
            self.useCheckpoint.emit(self.result_path)
