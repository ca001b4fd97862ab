"""Resize: shrink by ``scale`` with an anti-aliased bilinear filter and enlarge back to
the original size, a low-pass purifier.

Reference: Xie et al., "Mitigating adversarial effects through randomization", ICLR 2018
(resizing); MSU's defence benchmark (scale 0.1–0.9).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.defences.base import DEFENCES, Defence, sweep
from engine.spec.params import param


@dataclass
class ResizeParams:
    scale: float = param(0.5, min=0.01, max=1.0, step=0.05, help="size factor of the intermediate image")


def scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """The intermediate size: ``round(scale·side)``, at least 1 px."""
    return max(1, round(h * scale)), max(1, round(w * scale))


def down_up(x: torch.Tensor, scale: float, mode: str = "bilinear", antialias: bool = True) -> torch.Tensor:
    """Resize to ``scale`` of the size and back to exactly H×W.

    Args:
        x: :math:`(B, C, H, W)`.
        scale: factor in (0, 1]; 1 (or a size that rounds to H×W) returns ``x``.
        mode: ``nearest``, ``bilinear`` or ``bicubic`` (nearest uses the pixel-centre
            convention, torch's ``nearest-exact``).
        antialias: low-pass before shrinking (bilinear/bicubic only).

    Returns:
        :math:`(B, C, H, W)`, differentiable (nearest passes gradient to the picked pixels).
    """
    h, w = x.shape[-2:]
    size = scaled_size(h, w, scale)
    if size == (h, w):
        return x
    m = "nearest-exact" if mode == "nearest" else mode
    kw = {} if m == "nearest-exact" else {"align_corners": False}
    small = F.interpolate(x, size=size, mode=m, antialias=antialias and m != "nearest-exact", **kw)
    return F.interpolate(small, size=(h, w), mode=m, **kw)


@DEFENCES.register("resize")
class Resize(Defence):
    """Anti-aliased bilinear down- and up-scaling (differentiable, deterministic).

    Args:
        scale: intermediate size factor (MSU default 0.5; presets 0.1, 0.25, 0.5, 0.75, 0.9).

    Shape:
        - Input: :math:`(B, 3, H, W)`. Output: the same size.

    Example:
        >>> Resize(scale=0.25)(x).shape == x.shape
        True
    """

    Params = ResizeParams
    presets = sweep("scale", [0.1, 0.25, 0.5, 0.75, 0.9], fmt="{:g}")
    differentiable = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return down_up(x, self.params.scale, "bilinear", antialias=True)
