"""The session's small types (no Qt): observer lists, per-item state, per-image status."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Observable:
    """A list of callbacks: ``connect(fn)``, then ``emit(*args)`` calls each in order."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, fn: Callable[..., Any]) -> None:
        self._callbacks.append(fn)

    def disconnect(self, fn: Callable[..., Any]) -> None:
        self._callbacks = [f for f in self._callbacks if f != fn]

    def emit(self, *args: Any) -> None:
        for fn in list(self._callbacks):
            fn(*args)


@dataclass
class ItemState:
    """One work item as the session tracks it."""

    item_id: str
    image: str
    image_name: str
    metric: str
    attack: str
    status: str = "pending"     # pending, running, done, failed
    error: str = ""
    stage: str = ""


@dataclass
class ImageStatus:
    """The status of one image over its items (one per metric × attack)."""

    state: str                  # pending, running, done, partial (some failed), error (all failed)
    done: int = 0
    failed: int = 0
    total: int = 0
    lines: list[str] = field(default_factory=list)   # one per item, with the full error text

    @property
    def summary(self) -> str:
        """Short text under the thumbnail, e.g. ``1/2 done · 1 failed`` (it says the state)."""
        if self.state == "partial" or (self.state == "error" and self.total > 1) or \
                (self.state == "pending" and self.done):
            parts = [f"{self.done}/{self.total} done"]
            if self.failed:
                parts.append(f"{self.failed} failed")
            return " · ".join(parts)
        return ""

    @property
    def message(self) -> str:
        """The full text: one line per item that failed, or every item when mixed."""
        return "\n".join(self.lines)


def image_status(items: list[ItemState]) -> ImageStatus:
    """Combine an image's items into its status."""
    done = sum(i.status == "done" for i in items)
    failed = sum(i.status == "failed" for i in items)
    running = any(i.status == "running" for i in items)
    total = len(items)
    if running:
        state = "running"
    elif failed and failed == total:
        state = "error"
    elif failed and done + failed == total:
        state = "partial"
    elif total and done == total:
        state = "done"
    else:
        state = "pending" if not failed else "partial"
    lines = [f"{i.metric} · {i.attack}: " + (f"failed [{i.stage}] {i.error}" if i.status == "failed" else i.status)
             for i in items if i.status == "failed" or (failed and i.status == "done")]
    return ImageStatus(state, done, failed, total, lines)


def failure_row(info: ItemState) -> dict[str, Any]:
    """The results-table row of a failed item (the full error text)."""
    return {"image_name": info.image_name, "metric": info.metric, "attack": info.attack, "item_id": info.item_id,
            "error": f"[{info.stage}] {info.error}" if info.stage else info.error, "flag": ""}


def stored_series(item: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """A stored item's attack curve: attack label → [(iteration, score)]."""
    pts = [step_point(s) for s in item.get("steps") or [] if s.get("score") is not None]
    return {item["attack"]: pts} if pts else {}


def step_point(step: Any) -> tuple[float, float]:
    """``(x, score)`` of one attack step (a StepRecord or its stored dict) for these curves:
    x is the queries spent for score-only attacks (their steps record them), else the
    iteration."""
    get = step.get if isinstance(step, dict) else (lambda k: getattr(step, k, None))
    queries = get("queries")
    return float(get("iteration") if queries is None else queries), float(get("score"))
