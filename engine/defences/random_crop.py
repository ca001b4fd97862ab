"""Random crop: keep a size×size window at a random position. The metric then sees a
region the attacker could not know in advance (its output is smaller than the input).

The presets ``size=32 … 288`` are MSU's code (``metrics/defences/random-crop/run.py``,
torchvision's ``RandomCrop``: top then left drawn with ``randint`` from the seeded
generator, as here) wherever MSU runs. For a crop larger than a side MSU's code raises
(256 and 288 on images smaller than that); this project keeps the short side whole
instead (see :func:`random_crop`), so such rows exist here and not in MSU's tables.

Reference: Guo et al., "Countering adversarial images using input transformations",
ICLR 2018 (cropping); MSU's defence benchmark (size 32–288).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.defences.base import DEFENCES, Defence, sweep
from engine.spec.params import param


@dataclass
class RandomCropParams:
    size: int = param(128, min=1, max=8192, step=16, help="side of the square crop", unit="px")


def crop_offsets(h: int, w: int, size: int, n: int, generator: torch.Generator | None) -> list[tuple[int, int]]:
    """``n`` (top, left) positions, uniform over the valid ones, drawn in order from a CPU
    generator (top, then left, per image; a side with no room still draws, so the
    sequence of draws does not depend on the image size)."""
    ch, cw = min(size, h), min(size, w)
    out = []
    for _ in range(n):
        top = int(torch.randint(h - ch + 1, (1,), generator=generator))
        left = int(torch.randint(w - cw + 1, (1,), generator=generator))
        out.append((top, left))
    return out


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """Crop a ``size``×``size`` window from each image at a random position.

    A side shorter than ``size`` is kept whole: the crop is ``min(size, H)`` ×
    ``min(size, W)``, so an image smaller than ``size`` both ways comes back unchanged and
    one smaller only one way is cropped along the other side only.

    Args:
        x: :math:`(B, C, H, W)`.
        size: requested side.
        generator: CPU generator for the positions.

    Returns:
        :math:`(B, C, min(size, H), min(size, W))`.
    """
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    return torch.stack([x[i, :, t:t + ch, l:l + cw]
                        for i, (t, l) in enumerate(crop_offsets(h, w, size, x.shape[0], generator))])


@DEFENCES.register("random-crop")
class RandomCrop(Defence):
    """Square crop at a random position (differentiable, random, geometric).

    Args:
        size: side of the crop (MSU default 128; presets 32, 64, 128, 256, 288). A side
            shorter than ``size`` is kept whole.

    Shape:
        - Input: :math:`(B, 3, H, W)`.
        - Output: :math:`(B, 3, min(size, H), min(size, W))`.

    Example:
        >>> RandomCrop(size=64)(x, seed=3).shape[-2:]
        torch.Size([64, 64])
    """

    Params = RandomCropParams
    presets = sweep("size", [32, 64, 128, 256, 288])
    differentiable = True
    random = True
    geometric = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return random_crop(x, self.params.size, generator)
