"""Upscale: shrink by ``scale`` and upscale back with a chosen interpolation (nearest,
bilinear or bicubic), without anti-aliasing — a plain decimation, as a cheap upscaler
would see it. Differs from ``resize`` (anti-aliased bilinear) in the filter.

Reference: MSU's defence benchmark ("upscale", scale 0.1–0.9, nearest/bilinear/bicubic).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.defences.base import DEFENCES, Defence, sweep
from engine.defences.resize import down_up
from engine.spec.params import param


@dataclass
class UpscaleParams:
    scale: float = param(0.5, min=0.01, max=1.0, step=0.05, help="size factor of the intermediate image")
    mode: str = param("bicubic", choices=("nearest", "bilinear", "bicubic"),
                      help="interpolation used both ways")


@DEFENCES.register("upscale")
class Upscale(Defence):
    """Decimate and upscale back with nearest/bilinear/bicubic (differentiable, deterministic).

    Args:
        scale: intermediate size factor (MSU default 0.5; presets 0.1, 0.25, 0.5, 0.75, 0.9).
        mode: interpolation (default bicubic; its overshoot is clamped to [0, 1]).

    Shape:
        - Input: :math:`(B, 3, H, W)`. Output: the same size.

    Example:
        >>> Upscale(scale=0.5, mode="nearest")(x).shape == x.shape
        True
    """

    Params = UpscaleParams
    presets = sweep("scale", [0.1, 0.25, 0.5, 0.75, 0.9], fmt="{:g}")
    differentiable = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return down_up(x, self.params.scale, self.params.mode, antialias=False)
