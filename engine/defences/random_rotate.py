"""Random rotation: rotate each image by an angle drawn from U[−limit, limit] about its
centre, keeping the size (corners filled per ``padding``).

MSU's code (``metrics/defences/random-rotate/run.py``: torchvision's ``RandomRotation``)
rotates with nearest-neighbour sampling by one angle drawn as ``uniform_(−limit, limit)``
in float32 from the seeded generator; this project's default draws in float64 and
samples bilinearly (the distributions agree, the same seed gives different angles). The
presets ``msu-literal angle_limit=…`` (``interpolation="nearest"``, ``draw="torchvision"``)
reproduce MSU: with the same seed, the same angle and the same pixels.

Reference: Xie et al., "Mitigating adversarial effects through randomization", ICLR 2018
(random input transforms); MSU's defence benchmark (limit 10–50°).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.geometry.transform import rotate

from engine.defences.base import DEFENCES, Defence, msu_reference, msu_sweep, sweep
from engine.spec.params import param


#: MSU's five presets of the angle limit (MSU casts the limit to int)
LIMITS = [10.0, 15.0, 20.0, 30.0, 50.0]


@dataclass
class RandomRotateParams:
    angle_limit: float = param(15.0, min=0.0, max=180.0, step=1.0, unit="°",
                               help="angles are drawn from U[−limit, limit]")
    padding: str = param("zeros", choices=("zeros", "border", "reflection"),
                         help="how the uncovered corners are filled")
    interpolation: str = param("bilinear", choices=("bilinear", "nearest"),
                               help="sampling (nearest: torchvision's rotate, as MSU; zeros padding only)")
    draw: str = param("float64", choices=("float64", "torchvision"),
                      help="angle draw: float64 U[−l, l], or float32 uniform_(−l, l) as torchvision's RandomRotation")


def draw_angles(n: int, limit: float, generator: torch.Generator | None, draw: str = "float64") -> torch.Tensor:
    """``n`` angles in degrees from U[−limit, limit], drawn on the CPU (one per image).

    ``draw="torchvision"``: each angle is ``torch.empty(1).uniform_(−limit, limit)`` in
    float32, torchvision's ``RandomRotation.get_params``: the same generator state gives
    the angle MSU's code gets after ``torch.manual_seed`` with the same seed.
    """
    if draw == "torchvision":
        return torch.cat([torch.empty(1).uniform_(-float(limit), float(limit), generator=generator)
                          for _ in range(n)]).double()
    return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * limit


def rotate_nearest(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each image by its angle (degrees, counter-clockwise) with nearest-neighbour
    sampling about the centre, zeros outside: torchvision's ``rotate`` (MSU's)."""
    from torchvision.transforms.functional import InterpolationMode, rotate

    return torch.cat([rotate(x[i:i + 1], float(a), InterpolationMode.NEAREST, fill=0.0)
                      for i, a in enumerate(angles.tolist())])


def random_rotate(x: torch.Tensor, limit: float, generator: torch.Generator | None,
                  padding: str = "zeros", interpolation: str = "bilinear", draw: str = "float64") -> torch.Tensor:
    """Rotate each image by its own random angle (counter-clockwise positive).

    Args:
        x: :math:`(B, C, H, W)`.
        limit: the largest |angle| in degrees.
        generator: CPU generator for the angles.
        padding: ``zeros``, ``border`` or ``reflection`` (bilinear only; nearest fills zeros).
        interpolation: ``bilinear`` (kornia) or ``nearest`` (torchvision, MSU).
        draw: :func:`draw_angles`' rule.

    Returns:
        :math:`(B, C, H, W)`.
    """
    angles = draw_angles(x.shape[0], limit, generator, draw)
    if limit == 0:
        return x
    if interpolation == "nearest":
        return rotate_nearest(x, angles)
    return rotate(x, angles.to(device=x.device, dtype=x.dtype), padding_mode=padding)


@DEFENCES.register("random-rotate")
class RandomRotate(Defence):
    """Rotation by a random angle (differentiable, random, geometric).

    Args:
        angle_limit: largest |angle| in ° (MSU default 15; presets 10, 15, 20, 30, 50).
        padding: corner fill (zeros).
        interpolation: bilinear (default) or nearest (MSU).
        draw: how the angle is drawn (``torchvision``: as MSU).

    Shape:
        - Input: :math:`(B, 3, H, W)`. Output: the same.

    Example:
        >>> d = RandomRotate(angle_limit=30)
        >>> torch.equal(d(x, seed=5), d(x, seed=5))
        True
    """

    Params = RandomRotateParams
    presets = {**sweep("angle_limit", LIMITS, fmt="{:g}"),
               **msu_sweep("angle_limit", LIMITS, fmt="{:g}", interpolation="nearest", draw="torchvision")}
    literal_presets = msu_reference("random-rotate", presets)
    differentiable = True
    random = True
    geometric = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.params
        return random_rotate(x, p.angle_limit, generator, p.padding, p.interpolation, p.draw)
