"""Random rotation: rotate each image by an angle drawn from U[−limit, limit] about its
centre, keeping the size (corners filled per ``padding``).

Reference: Xie et al., "Mitigating adversarial effects through randomization", ICLR 2018
(random input transforms); MSU's defence benchmark (limit 10–50°).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.geometry.transform import rotate

from engine.defences.base import DEFENCES, Defence, sweep
from engine.spec.params import param


@dataclass
class RandomRotateParams:
    angle_limit: float = param(15.0, min=0.0, max=180.0, step=1.0, unit="°",
                               help="angles are drawn from U[−limit, limit]")
    padding: str = param("zeros", choices=("zeros", "border", "reflection"),
                         help="how the uncovered corners are filled")


def draw_angles(n: int, limit: float, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` angles in degrees from U[−limit, limit], drawn on the CPU (one per image)."""
    return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * limit


def random_rotate(x: torch.Tensor, limit: float, generator: torch.Generator | None,
                  padding: str = "zeros") -> torch.Tensor:
    """Rotate each image by its own random angle (bilinear, counter-clockwise positive).

    Args:
        x: :math:`(B, C, H, W)`.
        limit: the largest |angle| in degrees.
        generator: CPU generator for the angles.
        padding: ``zeros``, ``border`` or ``reflection``.

    Returns:
        :math:`(B, C, H, W)`.
    """
    angles = draw_angles(x.shape[0], limit, generator)
    if limit == 0:
        return x
    return rotate(x, angles.to(device=x.device, dtype=x.dtype), padding_mode=padding)


@DEFENCES.register("random-rotate")
class RandomRotate(Defence):
    """Rotation by a random angle (differentiable, random, geometric).

    Args:
        angle_limit: largest |angle| in ° (MSU default 15; presets 10, 15, 20, 30, 50).
        padding: corner fill (zeros).

    Shape:
        - Input: :math:`(B, 3, H, W)`. Output: the same.

    Example:
        >>> d = RandomRotate(angle_limit=30)
        >>> torch.equal(d(x, seed=5), d(x, seed=5))
        True
    """

    Params = RandomRotateParams
    presets = sweep("angle_limit", [10.0, 15.0, 20.0, 30.0, 50.0], fmt="{:g}")
    differentiable = True
    random = True
    geometric = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.params
        return random_rotate(x, p.angle_limit, generator, p.padding)
