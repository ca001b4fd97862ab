"""Scoring helpers of the item computation: a metric's finite scores, or an :class:`ItemError`."""
from __future__ import annotations

import math

import torch

from engine.run.units import ItemError


def finite(value: float, what: str, stage: str) -> float:
    """``value``, or an :class:`ItemError` of ``stage`` when it is NaN or infinite."""
    if not math.isfinite(value):
        raise ItemError(stage, f"{what} is {value} (not a finite number); the item is not scored")
    return value


def finite_each(scores: torch.Tensor, what: str, stage: str) -> list[float]:
    """Per-image floats of a :math:`(B,)` score tensor, each checked to be finite."""
    return [finite(float(scores[i].item()), what, stage) for i in range(scores.shape[0])]


def metric_scores(metric, x: torch.Tensor, what: str, stage: str) -> list[float]:
    """The metric's score of every image of ``x``; any failure is an :class:`ItemError`."""
    try:
        s = metric.score(x)
    except Exception as exc:  # noqa: BLE001 - any metric failure is this item's error
        raise ItemError(stage, f"{metric.name} could not score the {what}: {failure_text(exc)}") from exc
    return finite_each(s, f"{metric.name} score of the {what}", stage)


def failure_text(exc: BaseException) -> str:
    """``"TypeName: first line"`` of an exception (for an item's error column)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (so timings measure it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_image(seeds: list[int]) -> int | list[int]:
    """One seed for a single image (today's call), the list for a batch."""
    return seeds[0] if len(seeds) == 1 else seeds
