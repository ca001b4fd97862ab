"""Upscale: shrink by ``scale`` and upscale back with a chosen interpolation (nearest,
bilinear or bicubic), without anti-aliasing — a plain decimation, as a cheap upscaler
would see it. Differs from ``resize`` (anti-aliased bilinear) in the filter.

MSU's code (``metrics/defences/upscale/run.py``) shrinks with torchvision's ``Resize``
(anti-aliased bilinear, ``int(scale·side)``) and then upsamples with ``mode`` (bilinear)
to a **fixed 384×512**, whatever the input size; the metric scores that. The presets
``msu-literal scale=…`` reproduce it (``antialias=True``, ``rounding="floor"``,
``mode="bilinear"``, ``out_height=384``, ``out_width=512``).

Reference: MSU's defence benchmark ("upscale", scale 0.1–0.9, nearest/bilinear/bicubic).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.defences.base import DEFENCES, Defence, msu_reference, msu_sweep, sweep
from engine.defences.resize import SCALES, down_up, shrink
from engine.spec.params import param

#: the output size MSU's upscale defence always returns (KonIQ-10k's 384×512)
MSU_OUT = (384, 512)


@dataclass
class UpscaleParams:
    scale: float = param(0.5, min=0.01, max=1.0, step=0.05, help="size factor of the intermediate image")
    mode: str = param("bicubic", choices=("nearest", "bilinear", "bicubic"),
                      help="interpolation used both ways (with antialias: the way up only)")
    antialias: bool = param(False, help="shrink with anti-aliased bilinear (torchvision's Resize, as MSU)")
    rounding: str = param("round", choices=("round", "floor"),
                          help="small side = round(scale·side), or int(scale·side) in float32 as MSU")
    out_height: int = param(0, min=0, max=16384, help="output height (0 = the input's)", unit="px")
    out_width: int = param(0, min=0, max=16384, help="output width (0 = the input's)", unit="px")


@DEFENCES.register("upscale")
class Upscale(Defence):
    """Decimate and upscale back with nearest/bilinear/bicubic (differentiable, deterministic).

    Args:
        scale: intermediate size factor (MSU default 0.5; presets 0.1, 0.25, 0.5, 0.75, 0.9).
        mode: interpolation (default bicubic; its overshoot is clamped to [0, 1]).
        antialias: shrink with anti-aliased bilinear instead of ``mode`` (MSU).
        rounding: ``round`` (default) or ``floor`` (MSU's ``int``).
        out_height, out_width: output size; 0 = the input's (MSU: 384×512).

    Shape:
        - Input: :math:`(B, 3, H, W)`. Output: the same size, or ``out_height×out_width``.

    Example:
        >>> Upscale(scale=0.5, mode="nearest")(x).shape == x.shape
        True
    """

    Params = UpscaleParams
    presets = {**sweep("scale", SCALES, fmt="{:g}"),
               **msu_sweep("scale", SCALES, fmt="{:g}", mode="bilinear", antialias=True, rounding="floor",
                           out_height=MSU_OUT[0], out_width=MSU_OUT[1])}
    literal_presets = msu_reference("upscale", presets)
    differentiable = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.params
        h, w = x.shape[-2:]
        out = (p.out_height or h, p.out_width or w)
        if not p.antialias and out == (h, w):
            return down_up(x, p.scale, p.mode, antialias=False, rounding=p.rounding)
        if p.antialias:
            small = shrink(x, p.scale, p.rounding)
        else:
            small = _decimate(x, p.scale, p.mode, p.rounding)
        m = "nearest-exact" if p.mode == "nearest" else p.mode
        kw = {} if m == "nearest-exact" else {"align_corners": False}
        return F.interpolate(small, size=out, mode=m, **kw)


def _decimate(x: torch.Tensor, scale: float, mode: str, rounding: str) -> torch.Tensor:
    """Shrink with ``mode`` and no low-pass."""
    from engine.defences.resize import scaled_size

    size = scaled_size(*x.shape[-2:], scale, rounding)
    if size == tuple(x.shape[-2:]):
        return x
    m = "nearest-exact" if mode == "nearest" else mode
    kw = {} if m == "nearest-exact" else {"align_corners": False}
    return F.interpolate(x, size=size, mode=m, **kw)
