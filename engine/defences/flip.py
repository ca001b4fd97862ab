"""Flip: mirror the image (both axes by default). The metric sees the same content in
another geometry, which breaks perturbations tuned to pixel positions.

Reference: MSU's defence benchmark ("flip", both axes, no parameters to sweep).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from engine.defences.base import DEFENCES, Defence
from engine.spec.params import param

_DIMS = {"both": (-2, -1), "horizontal": (-1,), "vertical": (-2,)}


@dataclass
class FlipParams:
    axes: str = param("both", choices=tuple(_DIMS),
                      help="both = rotate 180° (left-right and up-down); horizontal = left-right")


@DEFENCES.register("flip")
class Flip(Defence):
    """Mirror the image (differentiable, deterministic, geometric).

    Args:
        axes: ``both`` (MSU), ``horizontal`` (left-right) or ``vertical`` (up-down).

    Shape:
        - Input: :math:`(B, 3, H, W)`. Output: the same.

    Example:
        >>> torch.equal(Flip()(Flip()(x)), x)
        True
    """

    Params = FlipParams
    presets: ClassVar[dict[str, dict[str, Any]]] = {}  # MSU sweeps nothing for flip
    differentiable = True
    geometric = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.flip(x, dims=_DIMS[self.params.axes])
