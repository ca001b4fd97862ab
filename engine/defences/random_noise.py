"""Random Gaussian noise: x + σ·N(0, 1), drowning a small perturbation in larger noise.

Reference: Liu et al., "Towards Robust Neural Networks via Random Self-ensemble", ECCV
2018 (noise injection); MSU's defence benchmark (σ 0.01–0.1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.defences.base import DEFENCES, Defence, sweep
from engine.spec.params import param


@dataclass
class RandomNoiseParams:
    sigma: float = param(0.01, min=0.0, max=1.0, step=0.005, help="noise standard deviation (image units)")


def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None) -> torch.Tensor:
    """Add N(0, σ²) noise drawn on the CPU from ``generator`` (image by image, in order),
    so the same seed gives the same noise on any device.

    Args:
        x: :math:`(B, C, H, W)`.
        sigma: standard deviation.
        generator: a CPU generator (``None``: the global one).

    Returns:
        :math:`(B, C, H, W)`, not clamped.
    """
    noise = torch.stack([torch.randn(x.shape[1:], generator=generator) for _ in range(x.shape[0])])
    return x + sigma * noise.to(device=x.device, dtype=x.dtype)


@DEFENCES.register("random-noise")
class RandomNoise(Defence):
    """Additive Gaussian noise, clamped to [0, 1] (differentiable, random).

    Args:
        sigma: standard deviation (MSU default 0.01; presets 0.01, 0.025, 0.05, 0.075, 0.1).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: the same.

    Example:
        >>> d = RandomNoise(sigma=0.05)
        >>> torch.equal(d(x, seed=1), d(x, seed=1))
        True
    """

    Params = RandomNoiseParams
    presets = sweep("sigma", [0.01, 0.025, 0.05, 0.075, 0.1], fmt="{:g}")
    differentiable = True
    random = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return gaussian_noise(x, self.params.sigma, generator)
