"""Training learned components (the paper's FCN purification filter)."""
from __future__ import annotations

from engine.training.fcn_trainer import FCNTrainStep, train_fcn
from engine.training.pairs import TrainingError

__all__ = ["FCNTrainStep", "TrainingError", "train_fcn"]
