"""Robust fine-tuning of a metric off the GUI thread (Tools → Train robust metric…).

:class:`RobustTrainWorker` lives in a ``QThread`` and iterates
:func:`engine.training.robust.train_robust`, re-emitting each epoch as a signal. Stopping
is cooperative (the generator is closed between epochs); the best weights and the
resumable ``X.last.pt`` stay, so starting again resumes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generator

from gui.training_worker import TrainWorkerBase


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

    def start(self) -> Generator[Any, None, Any]:
        from engine.training.robust import train_robust

        return train_robust(self.settings.folder, **self.settings.kwargs())

    def previous_history(self, checkpoint_path: str) -> list[dict[str, Any]]:
        from engine.training.robust import previous_history

        return previous_history(checkpoint_path)
