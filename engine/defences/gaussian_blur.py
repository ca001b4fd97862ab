"""Gaussian blur, a low-pass purifier that removes high-frequency perturbations.

Reference: the MSU defence benchmark's Gaussian blur (σ from the kernel size by OpenCV's
rule); Xu et al., "Feature Squeezing", NDSS 2018 (spatial smoothing).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.filters import gaussian_blur2d

from engine.defences._common import (
    CheckedDefence,
    border_for,
    opencv_sigma,
    require_odd,
)
from engine.defences.base import DEFENCES, sweep
from engine.spec.params import param


@dataclass
class GaussianBlurParams:
    kernel_size: int = param(3, min=1, max=51, step=2,
                             help="odd kernel size k; σ = 0.3((k−1)/2 − 1) + 0.8", unit="px")


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: float | None = None) -> torch.Tensor:
    """Separable Gaussian blur with reflect borders.

    Args:
        x: :math:`(B, C, H, W)`.
        kernel_size: odd k (1 = identity).
        sigma: standard deviation; ``None`` = OpenCV's rule for k.

    Returns:
        :math:`(B, C, H, W)`.
    """
    if kernel_size == 1:
        return x
    s = opencv_sigma(kernel_size) if sigma is None else sigma
    return gaussian_blur2d(x, (kernel_size, kernel_size), (s, s),
                           border_type=border_for(x, kernel_size // 2))


@DEFENCES.register("gaussian-blur")
class GaussianBlur(CheckedDefence):
    """Gaussian blur with σ tied to the kernel size (differentiable, deterministic).

    Args:
        kernel_size: odd k (MSU default 3; presets 3, 5, 7, 9, 11).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: the same.

    Example:
        >>> GaussianBlur(kernel_size=5)(x).shape == x.shape
        True
    """

    Params = GaussianBlurParams
    presets = sweep("kernel_size", [3, 5, 7, 9, 11])
    differentiable = True

    def validate(self, p: GaussianBlurParams) -> None:
        require_odd("kernel_size", p.kernel_size)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return gaussian_blur(x, self.params.kernel_size)
