"""Resuming a training from its ``X.last.pt``: one reader for every trainer.

A trainer saves ``{"format", "state_dict", "optimizer", "epoch", "manifest"}`` after every
epoch (atomically). Resuming checks that the file is that trainer's and that the settings
which decide its numbers are unchanged; the model and optimizer then continue where they
stopped, with the history, the best value so far and the creation time of the first run.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.training.pairs import TrainingError


def read_last(path: Path) -> Any:
    """The resumable state saved at ``path`` (None when there is no file).

    Raises:
        TrainingError: the file cannot be read.
    """
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise TrainingError(f"cannot resume from {str(path)!r} ({type(exc).__name__}: {exc}); "
                            "start over with resume=False (--no-resume)") from None


def _same(a: Any, b: Any) -> bool:
    # through JSON: a list read back from the file equals the tuple it was saved from
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def load_last(path: Path, settings: dict[str, Any], *, fmt: str, keys: tuple[str, ...],
              kind: str) -> dict[str, Any] | None:
    """The state at ``path`` when it is a ``fmt`` run with the same ``keys`` of ``settings``.

    Raises:
        TrainingError: unreadable, another kind of run (``kind`` names the expected one), or
            other settings (each differing key with its old and new value).
    """
    state = read_last(path)
    if state is None:
        return None
    old = state.get("manifest", {}) if isinstance(state, dict) else {}
    diff = [k for k in keys if not _same(old.get(k), settings.get(k))]
    if not isinstance(state, dict) or state.get("format") != fmt or diff:
        what = ", ".join(f"{k}: {old.get(k)!r} → {settings.get(k)!r}" for k in diff) or f"not {kind}"
        raise TrainingError(f"{path!s} belongs to a different training run ({what}); "
                            "use the same settings or start over with resume=False (--no-resume)")
    return state


def previous_history(last_path: Path, fmt: str) -> list[dict[str, Any]]:
    """The epochs a ``fmt`` run saved at ``last_path`` has trained; empty when there is none
    to resume (an unreadable file is reported by the trainer itself)."""
    try:
        state = read_last(last_path)
    except TrainingError:
        return []
    if not isinstance(state, dict) or state.get("format") != fmt:
        return []
    return [dict(h) for h in state.get("manifest", {}).get("history", [])]


@dataclass
class ResumePoint:
    """Where a training continues: the first epoch to train and what came before."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -math.inf
    best_epoch: int = 0
    start: int = 1
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))


def resume(state: dict[str, Any] | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
           best_key: str) -> ResumePoint:
    """Load ``state`` (from :func:`load_last`) into the model and optimizer; a fresh start
    when it is None. ``best_key`` is the manifest's name of the best value so far."""
    if state is None:
        return ResumePoint()
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    manifest = state["manifest"]
    point = ResumePoint(history=list(manifest.get("history", [])),
                        best=float(manifest.get(best_key, -math.inf)),
                        best_epoch=int(manifest.get("best_epoch", 0)), start=int(state["epoch"]) + 1)
    point.created = manifest.get("created", point.created)
    return point
