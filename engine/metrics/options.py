"""Typed parameters every metric takes (the CLI, ``main.py list`` and the GUI read these)."""
from __future__ import annotations

from dataclasses import dataclass

from engine.spec.params import param


@dataclass
class MetricParams:
    """Parameters common to all metrics."""

    pretrained: bool = param(True, help="load the published weights (download if missing); "
                                        "off = same architecture with random weights")
    weights: str | None = param(None, help="local checkpoint file to load instead of the "
                                           "default one (no download)")
