"""Non-local means denoising (OpenCV ``fastNlMeansDenoisingColored``): each pixel becomes
a weighted mean of pixels whose surrounding patches look alike; removes noise-like
perturbations while keeping texture better than local filters.

Reference: Buades et al., "A non-local algorithm for image denoising", CVPR 2005. MSU's
benchmark lists NLM without published presets; the five presets here sweep the filter
strength h (OpenCV units on the 0–255 scale).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from engine.defences._common import (
    CheckedDefence,
    from_uint8_hwc,
    require_odd,
    to_uint8_hwc,
)
from engine.defences.base import DEFENCES, sweep
from engine.spec.params import param


@dataclass
class NLMParams:
    h: float = param(10.0, min=0.1, max=100.0, step=1.0,
                     help="filter strength for luminance (0–255 scale; higher = smoother)")
    h_color: float = param(0.0, min=0.0, max=100.0, step=1.0,
                           help="filter strength for colour; 0 = same as h")
    template_window: int = param(7, min=3, max=21, step=2, help="odd patch size", unit="px")
    search_window: int = param(21, min=3, max=51, step=2, help="odd search window size", unit="px")


def nlm_denoise(image: np.ndarray, h: float, h_color: float, template: int, search: int) -> np.ndarray:
    """OpenCV colour NLM on an H×W×3 uint8 RGB array (works in Lab, so channel order
    matters: converted to BGR and back)."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    out = cv2.fastNlMeansDenoisingColored(bgr, None, float(h), float(h_color or h), template, search)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


@DEFENCES.register("nlm")
class NLM(CheckedDefence):
    """Non-local means via OpenCV (not differentiable, deterministic).

    The image is quantised to 8 bits (OpenCV's NLM works on uint8) and processed on the
    CPU, then moved back to the input's device and dtype.

    Args:
        h: luminance strength (default 10; presets 3, 5, 10, 15, 20).
        h_color: colour strength (0 = h).
        template_window: patch size (7).
        search_window: search window (21).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: the same.

    Example:
        >>> NLM(h=5)(x).shape == x.shape
        True
    """

    Params = NLMParams
    presets = sweep("h", [3.0, 5.0, 10.0, 15.0, 20.0], fmt="{:g}")
    differentiable = False

    def validate(self, p: NLMParams) -> None:
        require_odd("template_window", p.template_window)
        require_odd("search_window", p.search_window)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.params
        out = [nlm_denoise(a, p.h, p.h_color, p.template_window, p.search_window) for a in to_uint8_hwc(x)]
        return from_uint8_hwc(out, x)
