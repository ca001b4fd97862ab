"""Bilateral filter: an edge-preserving smoother; each pixel becomes a mean of its k×k
window weighted by spatial distance and by colour difference.

Reference: Tomasi & Manduchi, "Bilateral filtering for gray and color images", ICCV 1998.
The MSU benchmark lists a bilateral filter without published presets; the five presets
here sweep the kernel size like the other filters (3–11).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.filters import bilateral_blur

from engine.defences._common import (
    CheckedDefence,
    local_filter,
    opencv_sigma,
    require_odd,
)
from engine.defences.base import DEFENCES, sweep
from engine.spec.params import param


@dataclass
class BilateralParams:
    kernel_size: int = param(5, min=1, max=31, step=2, help="odd window size k", unit="px")
    sigma_color: float = param(0.1, min=1e-3, max=10.0, step=0.01,
                               help="σ of the colour weight (L1 distance over RGB, image units 0–1)")
    sigma_space: float = param(0.0, min=0.0, max=50.0, step=0.1,
                               help="σ of the spatial weight in px; 0 = from k (OpenCV's rule)", unit="px")


def bilateral(x: torch.Tensor, kernel_size: int, sigma_color: float, sigma_space: float) -> torch.Tensor:
    """Bilateral filter (kornia), reflect borders, computed in row bands.

    Args:
        x: :math:`(B, C, H, W)`.
        kernel_size: odd k (1 = identity).
        sigma_color: colour σ in image units.
        sigma_space: spatial σ in px (≤ 0: OpenCV's rule for k).

    Returns:
        :math:`(B, C, H, W)`.
    """
    if kernel_size == 1:
        return x
    s = sigma_space if sigma_space > 0 else opencv_sigma(kernel_size)
    return local_filter(x, kernel_size // 2, lambda band: bilateral_blur(
        band, (kernel_size, kernel_size), sigma_color, (s, s), border_type="reflect"))


@DEFENCES.register("bilateral")
class Bilateral(CheckedDefence):
    """Bilateral filter via kornia (differentiable, deterministic).

    Args:
        kernel_size: odd k (default 5; presets 3, 5, 7, 9, 11).
        sigma_color: colour σ (0.1 ≈ 25/255).
        sigma_space: spatial σ (0 = from k).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: the same.

    Example:
        >>> Bilateral(kernel_size=7)(x).shape == x.shape
        True
    """

    Params = BilateralParams
    presets = sweep("kernel_size", [3, 5, 7, 9, 11])
    differentiable = True
    split_batch = True  # kornia's batched bilateral kernel rounds differently from one image (~5e-7)

    def validate(self, p: BilateralParams) -> None:
        require_odd("kernel_size", p.kernel_size)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.params
        return bilateral(x, p.kernel_size, p.sigma_color, p.sigma_space)
