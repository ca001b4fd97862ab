"""Differentiable JPEG (kornia's ``jpeg_codec_differentiable``): JPEG purification that
gradients pass through, so adaptive attacks need no BPDA.

MSU's code (``metrics/defences/diffjpeg/run.py``) runs Reich et al.'s codec with a
straight-through estimator (:mod:`engine.defences._reich_jpeg`): its forward pass rounds
the DCT coefficients exactly, as a real JPEG; kornia's soft rounding changes the forward
output (up to 26/255 on photos) and its YCbCr differs (grey → chroma 127.5, rounded
coefficients). The presets ``msu-literal q=…`` (``codec="reich-ste"``) reproduce MSU,
including its padding (reflect, bottom/right, ``16 − side mod 16``).

Reference: Reich et al., "Differentiable JPEG: The Devil is in the Details", WACV 2024;
Shin & Song, "JPEG-resistant adversarial images", 2017.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.enhance import jpeg_codec_differentiable

from engine.defences._reich_jpeg import msu_diffjpeg
from engine.defences.base import DEFENCES, Defence, msu_reference, msu_sweep, sweep
from engine.defences.jpeg import QUALITIES
from engine.spec.params import param


@dataclass
class DiffJPEGParams:
    q: int = param(50, min=1, max=100, help="JPEG quality (lower = stronger)", step=5)
    codec: str = param("kornia", choices=("kornia", "reich-ste"),
                       help="kornia's soft-rounding codec, or Reich et al.'s straight-through one (MSU)")


def diff_jpeg(x: torch.Tensor, q: float) -> torch.Tensor:
    """Differentiable JPEG encode/decode at quality ``q`` (4:2:0, standard tables).

    Kornia pads to a multiple of 16 (bottom/right) and crops back itself; it works in
    float32, so the result is cast back to the input dtype.

    Args:
        x: :math:`(B, 3, H, W)` RGB in [0, 1].
        q: quality in [1, 100].

    Returns:
        :math:`(B, 3, H, W)`, same dtype and device.
    """
    quality = torch.tensor([float(q)], device=x.device, dtype=torch.float32)
    return jpeg_codec_differentiable(x.float(), quality).to(x.dtype)


@DEFENCES.register("diffjpeg")
class DiffJPEG(Defence):
    """Differentiable JPEG via kornia (differentiable, deterministic).

    Args:
        q: quality 1–100 (MSU default 50; presets 10, 30, 50, 70, 90).
        codec: ``kornia`` (default) or ``reich-ste`` (MSU's).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1]. Output: the same.

    Example:
        >>> DiffJPEG(q=50)(x).shape == x.shape
        True
    """

    Params = DiffJPEGParams
    presets = {**sweep("q", QUALITIES), **msu_sweep("q", QUALITIES, codec="reich-ste")}
    literal_presets = msu_reference("diffjpeg", presets)
    differentiable = True
    split_batch = True  # the batched DCT rounds differently from one image (~3e-7)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.params.codec == "reich-ste":
            return msu_diffjpeg(x.float(), self.params.q).to(x.dtype)
        return diff_jpeg(x, self.params.q)
