"""Helpers shared by the classical defences (not a defence module: not auto-registered).

- :class:`CheckedDefence`: a :class:`Defence` whose parameters get a cross-field check
  (odd kernels and the like) on construction, raising :class:`ParamError`.
- :func:`opencv_sigma`: OpenCV's σ for a Gaussian kernel of size k.
- :func:`local_filter`: run a k×k sliding-window filter in row bands, so that filters that
  unfold k² copies of the image (median, bilateral) stay within a memory budget.
- :func:`to_uint8_hwc` / :func:`from_uint8_hwc`: tensor ↔ OpenCV images, per batch entry.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.defences.base import Defence
from engine.spec.params import ParamError

#: elements (B·C·rows·W·k²) one band of a sliding-window filter may unfold at once
BAND_BUDGET = 1 << 25


class CheckedDefence(Defence):
    """A defence whose parameters are validated beyond min/max on construction."""

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.validate(self.params)

    def validate(self, p: Any) -> None:
        """Raise :class:`ParamError` for an invalid combination of parameters."""


def require_odd(name: str, value: int) -> None:
    if value % 2 != 1:
        raise ParamError(f"parameter {name!r} = {value} must be odd (the kernel needs a centre)")


def opencv_sigma(kernel_size: int) -> float:
    """σ = 0.3·((k − 1)/2 − 1) + 0.8, OpenCV's rule for ``getGaussianKernel`` with σ ≤ 0."""
    return 0.3 * ((kernel_size - 1) / 2 - 1) + 0.8


def border_for(x: torch.Tensor, radius: int) -> str:
    """``reflect`` padding needs radius < size; fall back to ``replicate`` on tiny images."""
    return "reflect" if radius < min(x.shape[-2:]) else "replicate"


def local_filter(x: torch.Tensor, radius: int,
                 fn: Callable[[torch.Tensor], torch.Tensor],
                 budget: int = BAND_BUDGET) -> torch.Tensor:
    """Apply a sliding-window filter of the given radius in horizontal bands.

    The image is padded once (reflect, or replicate on tiny images); each band carries a
    halo of ``radius`` rows/columns on every side, so whatever padding ``fn`` adds itself
    never reaches the kept centre and the result equals ``fn`` on the padded image.

    Args:
        x: :math:`(B, C, H, W)`.
        radius: half the window size (k // 2).
        fn: the filter, applied to a padded band :math:`(B, C, h + 2r, W + 2r)` and
            returning the same shape.
        budget: the most unfolded elements one band may need.

    Returns:
        :math:`(B, C, H, W)`.
    """
    if radius == 0:
        return fn(x)
    b, c, h, w = x.shape
    mode = "reflect" if radius < min(h, w) else "replicate"
    xp = F.pad(x, (radius, radius, radius, radius), mode=mode)
    k2 = (2 * radius + 1) ** 2
    rows = max(1, budget // max(1, b * c * (w + 2 * radius) * k2))
    out = []
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        band = fn(xp[..., r0:r1 + 2 * radius, :])
        out.append(band[..., radius:radius + (r1 - r0), radius:radius + w])
    return torch.cat(out, dim=-2)


def median_filter(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """k×k median of each channel on an already padded tensor (valid region, then re-padded).

    Differentiable: the gradient flows to the selected (median) pixel of each window.
    """
    r = kernel_size // 2
    b, c, h, w = x.shape
    patches = x.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # B,C,h-2r,w-2r,k,k
    med = patches.reshape(b, c, h - 2 * r, w - 2 * r, -1).median(dim=-1).values
    return F.pad(med, (r, r, r, r))  # the padded rim is cut off by local_filter


def to_uint8_hwc(x: torch.Tensor, truncate: bool = False) -> list[np.ndarray]:
    """A batch in [0, 1] as a list of H×W×3 uint8 RGB arrays (rounded, on the CPU;
    ``truncate``: ``x·255`` cut towards zero, as a ``.to(uint8)`` cast does)."""
    v = x.detach().float().clamp(0, 1) * 255
    arr = (v.floor() if truncate else v.round()).to(torch.uint8)
    return [np.ascontiguousarray(a) for a in arr.permute(0, 2, 3, 1).cpu().numpy()]


def from_uint8_hwc(images: list[np.ndarray], like: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_uint8_hwc`, with the dtype and device of ``like``.

    Contiguous (B, 3, H, W): a channels-last view would slow every later step down
    (kornia's SSIM about 6× on the CPU)."""
    t = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return t.to(device=like.device, dtype=like.dtype) / 255
