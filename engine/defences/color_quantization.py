"""Colour quantisation (bit-depth reduction): every channel is rounded to one of
``levels`` evenly spaced values, which erases perturbations smaller than half a step.

Reference: Xu et al., "Feature Squeezing", NDSS 2018 (colour-depth reduction); MSU's
defence benchmark (levels 2, 5, 16, 20, 25).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.defences.base import DEFENCES, Defence, sweep
from engine.spec.params import param


@dataclass
class ColorQuantizationParams:
    levels: int = param(16, min=2, max=256, help="values per channel (2 = 1 bit)")


def quantize_colors(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Round each channel to the nearest of ``levels`` values in {0, 1/(L−1), …, 1}.

    Args:
        x: :math:`(B, C, H, W)` in [0, 1].
        levels: L ≥ 2.

    Returns:
        :math:`(B, C, H, W)`; its gradient is zero almost everywhere.
    """
    n = levels - 1
    return torch.round(x.clamp(0, 1) * n) / n


@DEFENCES.register("color-quantization")
class ColorQuantization(Defence):
    """Per-channel uniform quantisation (deterministic).

    Declared not differentiable: rounding has a zero gradient almost everywhere, so an
    adaptive attack must use BPDA (identity backward, i.e. straight-through) — which the
    attack wrapper does for every non-differentiable defence; no straight-through trick
    is hidden in here.

    Args:
        levels: values per channel (MSU default 16; presets 2, 5, 16, 20, 25).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: the same.

    Example:
        >>> ColorQuantization(levels=2)(x).unique().numel() <= 2
        True
    """

    Params = ColorQuantizationParams
    presets = sweep("levels", [2, 5, 16, 20, 25])
    differentiable = False

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return quantize_colors(x, self.params.levels)
