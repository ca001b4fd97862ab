"""Robust fine-tuning of a metric off the GUI thread (Tools → Train robust metric…).

:class:`RobustTrainWorker` lives in a ``QThread`` and iterates
:func:`engine.training.robust.train_robust`, re-emitting each epoch as a signal. Stopping
is cooperative (the generator is closed between epochs); the best weights and the
resumable ``X.last.pt`` stay, so starting again resumes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generator

from gui.training_worker import TrainSettingsBase, TrainWorkerBase


@dataclass
class RobustTrainSettings(TrainSettingsBase):
    """``train_robust``'s settings."""

    method: str = "none"
    mos_format: str = "auto"
    val_attack_images: int = 8


class RobustTrainWorker(TrainWorkerBase):
    """Runs one robust training in a worker thread."""

    def start(self) -> Generator[Any, None, Any]:
        from engine.training.robust import train_robust

        return train_robust(self.settings.folder, **self.settings.kwargs())

    def previous_history(self, checkpoint_path: str) -> list[dict[str, Any]]:
        from engine.training.robust import previous_history

        return previous_history(checkpoint_path)
