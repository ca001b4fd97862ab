"""Counting a metric's queries: the images it scores, whatever calls it."""
from __future__ import annotations

from typing import Any

import torch


class QueryCounter:
    """Counts the images a metric scores (every forward pass, gradient ones included); a
    context manager. It wraps the instance's ``forward`` while open (``score`` calls
    ``forward`` directly, so a module hook would miss those calls) and restores it after.

    Example:
        >>> with QueryCounter(metric) as qc:  # doctest: +SKIP
        ...     attack(x, metric)
        >>> qc.images
    """

    def __init__(self, metric: torch.nn.Module) -> None:
        self.metric, self.images = metric, 0
        self._saved: tuple[bool, Any] | None = None

    def __enter__(self) -> "QueryCounter":
        own = "forward" in vars(self.metric)
        self._saved = (own, vars(self.metric).get("forward"))
        inner = self.metric.forward

        def counting(x: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(x, torch.Tensor) and x.dim() == 4:
                self.images += int(x.shape[0])
            return inner(x, *args, **kwargs)

        self.metric.forward = counting
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._saved is None:
            return
        own, previous = self._saved
        if own:
            self.metric.forward = previous
        else:
            del self.metric.forward
        self._saved = None


def queries_of(outcome: Any, counted: float) -> float | int:
    """Queries per image of an attack run: what a score-only attack recorded (its last step's
    ``queries``), else the metric evaluations counted per image."""
    steps = getattr(outcome, "steps", None) or []
    recorded = getattr(steps[-1], "queries", None) if steps else None
    v = float(recorded) if recorded is not None else float(counted)
    return int(v) if v.is_integer() else v
