"""Test helpers for attacks: a metric wrapper that counts calls, improvement checks,
draining a generator."""
from __future__ import annotations

from typing import Any, Generator

import torch

from engine.metrics.base import Metric


class CountingMetric(Metric):
    """Wraps a metric and counts its forward calls (same direction, bounds and range)."""

    def __init__(self, inner: Metric) -> None:
        super().__init__()
        self.inner = inner
        self.lower_better = inner.lower_better
        self.bounds = inner.bounds
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner.score(x, grad=torch.is_grad_enabled())


def improved(metric: Metric, clean: torch.Tensor, attacked: torch.Tensor) -> torch.Tensor:
    """Per image: True where the attacked score is better than the clean one."""
    return metric.sign * (metric.score(attacked) - metric.score(clean)) > 0


def is_monotone_curve(x: torch.Tensor, y: torch.Tensor) -> bool:
    """True when, for every image and channel, y is a non-decreasing function of x
    (pixels sorted by input value give non-decreasing outputs; equal inputs, equal outputs)."""
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            xi, yi = x[b, c].flatten(), y[b, c].flatten()
            order = torch.argsort(xi, stable=True)
            xs, ys = xi[order], yi[order]
            if bool((ys[1:] < ys[:-1]).any()):
                return False
            same = xs[1:] == xs[:-1]
            if bool((ys[1:][same] != ys[:-1][same]).any()):
                return False
    return True


def run_all(gen: Generator[Any, None, Any]) -> tuple[list[Any], Any]:
    """Run a generator to the end: ``(everything it yielded, what it returned)``."""
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value
