"""Run progress over items, refined by the attack iteration in flight, and its ETA (no Qt)."""
from __future__ import annotations

import math
import time


def format_eta(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "ETA —"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"ETA {seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"ETA {m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"ETA {h} h {m:02d} min"


class ProgressTracker:
    """Progress over the items of a run, refined by the attack iteration in flight."""

    def __init__(self) -> None:
        self.pending = 0
        self.finished = 0
        self.fraction_in_item = 0.0
        self.started = time.monotonic()

    def start(self, pending: int) -> None:
        self.pending = max(0, pending)
        self.finished = 0
        self.fraction_in_item = 0.0
        self.started = time.monotonic()

    @property
    def progress(self) -> float:
        if self.pending == 0:
            return 1.0
        return min(1.0, (self.finished + self.fraction_in_item) / self.pending)

    def eta(self) -> float | None:
        p = self.progress
        elapsed = time.monotonic() - self.started
        if p <= 0.01 or elapsed < 1.0:
            return None
        return elapsed * (1 - p) / p
