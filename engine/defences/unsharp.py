"""Unsharp masking: x + amount·(x − blur(x)). Sharpens back edges; the paper found it a
good second stage after a purifier (e.g. DiffPure then unsharp, see ``chain``).

Reference: the MSU defence benchmark (σ 1, amount 1, kernels 3–11).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.defences._common import CheckedDefence, require_odd
from engine.defences.base import DEFENCES, sweep
from engine.defences.gaussian_blur import gaussian_blur
from engine.spec.params import param


@dataclass
class UnsharpParams:
    kernel_size: int = param(3, min=1, max=51, step=2, help="odd kernel size of the blur", unit="px")
    sigma: float = param(1.0, min=0.05, max=50.0, step=0.1, help="σ of the Gaussian blur", unit="px")
    amount: float = param(1.0, min=0.0, max=10.0, step=0.1, help="weight of the detail x − blur(x)")


def unsharp(x: torch.Tensor, kernel_size: int, sigma: float = 1.0, amount: float = 1.0) -> torch.Tensor:
    """Unsharp mask ``x + amount·(x − G_σ * x)`` (not clamped; the defence clamps).

    Args:
        x: :math:`(B, C, H, W)`.
        kernel_size: odd k of the Gaussian (1 = identity).
        sigma: its σ.
        amount: detail gain (0 = identity).

    Returns:
        :math:`(B, C, H, W)`.
    """
    return x + amount * (x - gaussian_blur(x, kernel_size, sigma))


@DEFENCES.register("unsharp")
class Unsharp(CheckedDefence):
    """Unsharp masking (differentiable, deterministic).

    Args:
        kernel_size: odd k (MSU default 3; presets 3, 5, 7, 9, 11).
        sigma: σ of the blur (1).
        amount: detail gain (1).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: the same, clamped to [0, 1].

    Example:
        >>> Unsharp(kernel_size=5)(x).shape == x.shape
        True
    """

    Params = UnsharpParams
    presets = sweep("kernel_size", [3, 5, 7, 9, 11])
    differentiable = True

    def validate(self, p: UnsharpParams) -> None:
        require_odd("kernel_size", p.kernel_size)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.params
        return unsharp(x, p.kernel_size, p.sigma, p.amount)
