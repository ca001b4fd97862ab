"""Training the FCN filter off the GUI thread.

:class:`FCNTrainWorker` lives in a ``QThread`` and iterates
:func:`engine.training.train_fcn`, re-emitting its progress as signals (received by
methods of GUI-thread objects, so they run in the GUI thread). Stopping is cooperative:
while the pairs are being made the progress callback raises, between epochs the
generator is closed; what the trainer already saved (the best checkpoint and the
resumable ``X.last.pt``) stays, so starting again resumes.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Generator

from PySide6.QtCore import QObject, Signal, Slot

from gui.worker import lower_thread_priority


@dataclass
class TrainSettingsBase:
    """What a training dialog asks its trainer for; every field but ``folder`` is a keyword
    argument of the trainer (``train_fcn``, ``train_robust``)."""

    folder: str
    metric: str
    checkpoint_path: str
    attack: str | None = None
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-4
    seed: int = 0
    crop_size: int = 224
    device: str = "auto"
    resume: bool = True

    def kwargs(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "folder"}
        out["attack"] = self.attack or None
        return out


@dataclass
class TrainSettings(TrainSettingsBase):
    """``train_fcn``'s settings (the paper's defaults)."""

    epochs: int = 200
    batch_size: int = 4
    lr: float = 1e-3
    crop_size: int = 128
    val_split: float = 0.2


class _Stopped(Exception):
    """Raised inside the pair-making callback when the user stops."""


class TrainWorkerBase(QObject):
    """What every training worker shares: its outcome signals, a thread-safe cancel and
    the ``run`` slot that iterates the trainer's generator epoch by epoch.

    Subclasses say how their training starts (:meth:`start`) and where a resumed run's
    history comes from (:meth:`previous_history`), and may add progress signals."""

    history = Signal(object)          # epochs already trained (resume), list of dicts
    epochDone = Signal(object)        # the trainer's per-epoch step
    finished = Signal(str)            # path of the best weights / checkpoint
    stopped = Signal(str)             # stopped by the user; message
    failed = Signal(str)              # user-facing error
    done = Signal()                   # always last

    def __init__(self, settings: Any) -> None:
        super().__init__()
        from engine.run.units import CancelToken

        self.settings = settings
        self.token = CancelToken()

    def cancel(self) -> None:
        """Thread-safe; called from the GUI thread."""
        self.token.cancel()

    def start(self) -> Generator[Any, None, Any]:
        """The trainer's generator (one step per epoch; returns the checkpoint path)."""
        raise NotImplementedError

    def previous_history(self, checkpoint_path: str) -> list[dict[str, Any]]:
        """The epochs a resumed training already has."""
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        lower_thread_priority(int(os.environ.get("IQA_LAB_WORKER_NICE", "5")))
        from engine.metrics.base import MetricError
        from engine.spec.registry import UnknownComponent
        from engine.training.pairs import TrainingError

        s = self.settings
        try:
            if s.resume:
                self.history.emit(self.previous_history(s.checkpoint_path))
            run = self.start()
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
        except _Stopped:
            self.stopped.emit("stopped while making the training pairs; start again to go on")
        except (TrainingError, MetricError, UnknownComponent, ValueError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog, never a crash
            self.failed.emit(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
        finally:
            self.done.emit()


class FCNTrainWorker(TrainWorkerBase):
    """Runs one FCN training in a worker thread."""

    pairMade = Signal(object)         # (done, total, image name)

    def _on_pair(self, done: int, total: int, name: str) -> None:
        if self.token.cancelled:
            raise _Stopped()
        self.pairMade.emit((done, total, name))

    def start(self) -> Generator[Any, None, Any]:
        from engine.training import train_fcn

        return train_fcn(self.settings.folder, on_pair=self._on_pair, **self.settings.kwargs())

    def previous_history(self, checkpoint_path: str) -> list[dict[str, Any]]:
        from engine.training.fcn_trainer import previous_history

        return previous_history(checkpoint_path)
