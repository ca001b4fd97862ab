"""Resize: shrink by ``scale`` with an anti-aliased bilinear filter and enlarge back to
the original size, a low-pass purifier.

MSU's code (``metrics/defences/resize/run.py``) differs: it returns the *shrunk* image,
``int(scale·side)`` (torchvision's ``Resize``: bilinear, anti-aliased), and the metric
scores it small. The presets ``msu-literal scale=…`` do that (``restore=False``,
``rounding="floor"``); the defaults keep this project's size-preserving variant.

Reference: Xie et al., "Mitigating adversarial effects through randomization", ICLR 2018
(resizing); MSU's defence benchmark (scale 0.1–0.9).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.defences.base import DEFENCES, Defence, msu_reference, msu_sweep, sweep
from engine.spec.params import param


#: MSU's five presets of the scale
SCALES = [0.1, 0.25, 0.5, 0.75, 0.9]


@dataclass
class ResizeParams:
    scale: float = param(0.5, min=0.01, max=1.0, step=0.05, help="size factor of the intermediate image")
    restore: bool = param(True, help="enlarge back to the input size (False: return the small image, as MSU)")
    rounding: str = param("round", choices=("round", "floor"),
                          help="small side = round(scale·side), or int(scale·side) in float32 as MSU")


def scaled_size(h: int, w: int, scale: float, rounding: str = "round") -> tuple[int, int]:
    """The intermediate size, at least 1 px.

    Args:
        h, w: input size.
        scale: factor.
        rounding: ``round``: ``round(scale·side)``; ``floor``: MSU's ``int(side·scale)``
            with the product taken in float32 (a size tensor times a Python float), which
            can differ from the float64 product by one pixel.
    """
    if rounding == "floor":
        prod = torch.tensor([h, w], dtype=torch.float32) * torch.tensor(scale, dtype=torch.float32)
        return max(1, int(prod[0])), max(1, int(prod[1]))
    return max(1, round(h * scale)), max(1, round(w * scale))


def shrink(x: torch.Tensor, scale: float, rounding: str = "floor") -> torch.Tensor:
    """Anti-aliased bilinear resize to ``scale`` of the size (torchvision's ``Resize`` on a
    tensor), the size rounded per ``rounding``.

    Returns:
        :math:`(B, C, h', w')`, differentiable.
    """
    size = scaled_size(*x.shape[-2:], scale, rounding)
    if size == tuple(x.shape[-2:]):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def down_up(x: torch.Tensor, scale: float, mode: str = "bilinear", antialias: bool = True,
            rounding: str = "round") -> torch.Tensor:
    """Resize to ``scale`` of the size and back to exactly H×W.

    Args:
        x: :math:`(B, C, H, W)`.
        scale: factor in (0, 1]; 1 (or a size that rounds to H×W) returns ``x``.
        mode: ``nearest``, ``bilinear`` or ``bicubic`` (nearest uses the pixel-centre
            convention, torch's ``nearest-exact``).
        antialias: low-pass before shrinking (bilinear/bicubic only).
        rounding: how the small size is rounded (:func:`scaled_size`).

    Returns:
        :math:`(B, C, H, W)`, differentiable (nearest passes gradient to the picked pixels).
    """
    h, w = x.shape[-2:]
    size = scaled_size(h, w, scale, rounding)
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
        restore: enlarge back to H×W (default); False returns the small image (MSU).
        rounding: ``round`` (default) or ``floor`` (MSU's ``int``).

    Shape:
        - Input: :math:`(B, 3, H, W)`. Output: the same size; with ``restore=False``
          :math:`(B, 3, h', w')`, the scaled size.

    Example:
        >>> Resize(scale=0.25)(x).shape == x.shape
        True
    """

    Params = ResizeParams
    presets = {**sweep("scale", SCALES, fmt="{:g}"),
               **msu_sweep("scale", SCALES, fmt="{:g}", restore=False, rounding="floor")}
    literal_presets = msu_reference("resize", presets)
    differentiable = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.params
        if not p.restore:
            return shrink(x, p.scale, p.rounding)
        return down_up(x, p.scale, "bilinear", antialias=True, rounding=p.rounding)
