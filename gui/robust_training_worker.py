"""Robust fine-tuning of a metric off the GUI thread (Tools → Train robust metric…).

:class:`RobustTrainWorker` lives in a ``QThread`` and iterates
:func:`engine.training.robust.train_robust`, re-emitting each epoch as a signal. Stopping
is cooperative (the generator is closed between epochs); the best weights and the
resumable ``X.last.pt`` stay, so starting again resumes.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Slot

from gui.training_worker import TrainWorkerBase
from gui.worker import lower_thread_priority


@dataclass
class RobustTrainSettings:
    """What the dialog asks the trainer for (keyword arguments of ``train_robust``)."""

    folder: str
    metric: str
    checkpoint_path: str
    method: str = "none"
    mos_format: str = "auto"
    attack: str | None = None
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-4
    seed: int = 0
    crop_size: int = 224
    val_attack_images: int = 8
    device: str = "auto"
    resume: bool = True

    def kwargs(self) -> dict[str, Any]:
        return {"metric": self.metric, "method": self.method, "mos_format": self.mos_format,
                "attack": self.attack or None, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed, "crop_size": self.crop_size,
                "val_attack_images": self.val_attack_images, "checkpoint_path": self.checkpoint_path,
                "resume": self.resume, "device": self.device}


class RobustTrainWorker(TrainWorkerBase):
    """Runs one robust training in a worker thread."""

    @Slot()
    def run(self) -> None:
        lower_thread_priority(int(os.environ.get("IQA_LAB_WORKER_NICE", "5")))
        from engine.metrics.base import MetricError
        from engine.spec.registry import UnknownComponent
        from engine.training.pairs import TrainingError
        from engine.training.robust import previous_history, train_robust

        s = self.settings
        try:
            if s.resume:
                self.history.emit(previous_history(s.checkpoint_path))
            run = train_robust(s.folder, **s.kwargs())
            while True:
                if self.token.cancelled:
                    run.close()
                    self.stopped.emit("stopped; start again to resume")
                    return
                try:
                    step = next(run)
                except StopIteration as stop:
                    self.finished.emit(str(stop.value))
                    return
                self.epochDone.emit(step)
        except (TrainingError, MetricError, UnknownComponent, ValueError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog, never a crash
            self.failed.emit(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
        finally:
            self.done.emit()
