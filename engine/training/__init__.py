"""Training learned components: the paper's FCN purification filter, robust metric fine-tuning.

The names below load their modules (and torch) when first used, so a light module of this
package (e.g. :mod:`engine.training.options`, read by the CLI's parser) costs nothing.
"""
from __future__ import annotations

from typing import Any

__all__ = ["FCNTrainStep", "TrainingError", "train_fcn"]


def __getattr__(name: str) -> Any:
    if name in ("FCNTrainStep", "train_fcn"):
        from engine.training import fcn_trainer

        return getattr(fcn_trainer, name)
    if name == "TrainingError":
        from engine.training.pairs import TrainingError

        return TrainingError
    raise AttributeError(f"module 'engine.training' has no attribute {name!r}")
