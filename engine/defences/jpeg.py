"""JPEG compression with a real codec (libjpeg through OpenCV), a classic purifier.

MSU's code (``metrics/defences/jpeg/run.py``, torchvision's libjpeg) casts ``x·255`` to
uint8, which *truncates*; this project rounds. Both agree on 8-bit images (the attacked
PNGs MSU reads, or the ``msu`` protocol); on off-grid floats the presets
``msu-literal q=…`` (``quantise="truncate"``) reproduce MSU.

Reference: Dziugaite et al., "A study of the effect of JPG compression on adversarial
images", 2016; Das et al., "Keeping the bad guys out", 2017.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from engine.defences._common import from_uint8_hwc, to_uint8_hwc
from engine.defences.base import DEFENCES, Defence, DefenceError, msu_reference, msu_sweep, sweep
from engine.spec.params import param


#: MSU's five presets of the quality
QUALITIES = [10, 30, 50, 70, 90]


@dataclass
class JPEGParams:
    q: int = param(50, min=1, max=100, help="JPEG quality (libjpeg scale; lower = stronger)", step=5)
    quantise: str = param("round", choices=("round", "truncate"),
                          help="how x·255 becomes 8 bits before encoding (truncate: MSU's uint8 cast)")


def jpeg_roundtrip(image: np.ndarray, q: int) -> np.ndarray:
    """Encode an H×W×3 uint8 RGB array as a JPEG of quality ``q`` and decode it."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [int(cv2.IMWRITE_JPEG_QUALITY), int(q)])
    if not ok:
        raise DefenceError(f"jpeg: OpenCV could not encode a {image.shape[1]}×{image.shape[0]} image")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def jpeg(x: torch.Tensor, q: int, truncate: bool = False) -> torch.Tensor:
    """Compress every image of the batch as JPEG (quality ``q``, 4:2:0) and decode it.

    The image is quantised to 8 bits first, as a saved file would be. Not differentiable:
    the output carries no gradient (adaptive attacks use BPDA).

    Args:
        x: :math:`(B, 3, H, W)` RGB in [0, 1], any device.
        q: quality 1–100.
        truncate: quantise by truncating ``x·255`` (MSU) instead of rounding.

    Returns:
        :math:`(B, 3, H, W)`, same dtype and device.
    """
    return from_uint8_hwc([jpeg_roundtrip(a, q) for a in to_uint8_hwc(x, truncate)], x)


@DEFENCES.register("jpeg")
class JPEG(Defence):
    """JPEG encode/decode with OpenCV's libjpeg (not differentiable, deterministic).

    Args:
        q: quality 1–100 (MSU default 50; presets 10, 30, 50, 70, 90).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: the same.

    Example:
        >>> JPEG(q=30)(x).shape == x.shape
        True
    """

    Params = JPEGParams
    presets = {**sweep("q", QUALITIES), **msu_sweep("q", QUALITIES, quantise="truncate")}
    literal_presets = msu_reference("jpeg", presets)
    differentiable = False

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return jpeg(x, self.params.q, self.params.quantise == "truncate")
