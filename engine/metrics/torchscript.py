"""A metric that is just a network: a TorchScript file, scored with gradients.

``--metric torchscript:path=m.pt:lower_better=0:range=0,1`` loads ``m.pt`` (written by
``torch.jit.save``) and scores a :math:`(B, 3, H, W)` batch in [0, 1] with it; the
gradient flows through the scripted graph, so every white-box attack works on it.
Its outputs are checked like a plug-in's (one finite score per image, with a gradient).

Example:
    >>> torch.jit.save(torch.jit.script(MyNet()), "m.pt")                   # doctest: +SKIP
    >>> m = create_metric("torchscript", path="m.pt", lower_better=False, range="0,1")  # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.metrics.base import METRICS, Availability, Metric, MetricError
from engine.spec.params import param


@dataclass
class TorchScriptParams:
    """What the file is and how to read its scores."""

    path: str = param("", help="TorchScript file (torch.jit.save) mapping a (B,3,H,W) batch in [0,1] to (B,) scores")
    lower_better: bool = param(False, help="a lower score means better quality")
    range: str = param("0,100", help="the scores' range 'low,high' (normalises the attack loss and the gains)")


def parse_range(text: Any) -> tuple[float, float]:
    """``"0,1"`` (or ``[0, 1]``, ``"0:1"``) → ``(0.0, 1.0)``.

    Raises:
        MetricError: not two different numbers.
    """
    parts = [p for p in str(text).strip().strip("[]()").replace(":", ",").split(",") if p.strip()]
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise MetricError(f"torchscript: range={text!r}: give two numbers 'low,high', e.g. range=0,1") from None
    if lo == hi:
        raise MetricError(f"torchscript: range={text!r}: low and high must differ")
    return min(lo, hi), max(lo, hi)


@METRICS.register("torchscript")
class TorchScriptMetric(Metric):
    """A TorchScript model file as a metric (``path=``, ``lower_better=``, ``range=``)."""

    Params = TorchScriptParams
    differentiable = True

    def __init__(self, path: str = "", lower_better: bool = False, range: str = "0,100") -> None:
        super().__init__()
        file = Path(str(path)).expanduser()
        if not str(path):
            raise MetricError("torchscript: give the model file, e.g. torchscript:path=m.pt:lower_better=0:range=0,1")
        if not file.is_file():
            raise MetricError(f"torchscript: {file}: no such file")
        try:
            with warnings.catch_warnings():  # torch ≥ 2.9 deprecates TorchScript; the user chose it
                warnings.simplefilter("ignore", FutureWarning)
                self.model = torch.jit.load(str(file), map_location="cpu").eval()
        except Exception as exc:  # noqa: BLE001 - a bad file is the user's message
            raise MetricError(f"torchscript: {file} is not a TorchScript file "
                              f"(save one with torch.jit.save(torch.jit.script(model), path)): "
                              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
        lo, hi = parse_range(range)
        self.lower_better = bool(lower_better)
        self.bounds = (hi, lo) if self.lower_better else (lo, hi)
        self.plugin = f"torchscript file {file}"  # type: ignore[misc] - its scores are checked
        self.path = str(file)

    @classmethod
    def availability(cls, params: dict[str, Any] | None = None) -> Availability:
        """Ready when the named file exists (without parameters: ready to be given one)."""
        path = str((params or {}).get("path") or "")
        if params is None:
            return Availability("ready")
        if not path:
            return Availability("unavailable", "give the model file: torchscript:path=m.pt")
        if not Path(path).expanduser().is_file():
            return Availability("unavailable", f"the TorchScript file {path} does not exist")
        return Availability("ready")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
