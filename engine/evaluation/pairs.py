"""Full-reference comparisons between two images: PSNR, SSIM, MSE, L∞, MAE.

All take :math:`(B, 3, H, W)` tensors in [0, 1] and return :math:`(B,)`. When the two
sizes differ (random crop), ``b`` is resized to ``a``'s size first (bilinear), which is
why PSNR/SSIM against the clean image punish geometric defences (see the geometry-aware
quality in :mod:`engine.evaluation.scores`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.metrics import ssim as _kornia_ssim

#: PSNR of identical images is infinite; it is capped so that means stay finite. 80 dB is
#: the prototype quality score's own normaliser ((SSIM + PSNR/80)/2), so identical images
#: score exactly 1 there.
PSNR_CAP_DB = 80.0


def align(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``b`` resized to ``a``'s spatial size when they differ: bilinear, anti-aliased, not
    clamped, i.e. torchvision's ``Resize((H, W))``, what MSU's defence_evaluate.py does
    before comparing a defended image with an undefended one (its weights are
    non-negative, so an image in [0, 1] stays there)."""
    if a.shape[-2:] == b.shape[-2:]:
        return b
    return F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False, antialias=True)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - align(a, b)).pow(2).flatten(1).mean(1)


def mae(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - align(a, b)).abs().flatten(1).mean(1)


def linf(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - align(a, b)).abs().flatten(1).amax(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB for data range 1, capped at :data:`PSNR_CAP_DB`."""
    m = mse(a, b)
    out = 10 * torch.log10(1.0 / m.clamp_min(1e-30))
    return out.clamp(max=PSNR_CAP_DB)


def ssim(a: torch.Tensor, b: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Mean SSIM (Gaussian window 11, σ 1.5, on RGB channels averaged); exactly 1 for
    identical images (kornia's 1e-12 in the denominator would give 1 − ~1e-6 on flat
    areas), so an unchanged image needs no computing (:data:`IDENTICAL`)."""
    b = align(a, b)
    win = min(window_size, int(min(a.shape[-2:])) // 2 * 2 - 1)
    value = _kornia_ssim(a, b, window_size=max(win, 3), max_val=1.0).flatten(1).mean(1)
    same = (a == b).flatten(1).all(1) if a.shape == b.shape else torch.zeros_like(value, dtype=torch.bool)
    return torch.where(same, torch.ones_like(value), value)


PAIR_MEASURES = {"ssim": ssim, "mse": mse, "psnr": psnr, "l_inf": linf, "mae": mae}

#: what :func:`compare` gives for two identical images
IDENTICAL: dict[str, float] = {"ssim": 1.0, "mse": 0.0, "psnr": PSNR_CAP_DB, "l_inf": 0.0, "mae": 0.0}


@torch.no_grad()
def compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """All pair measures of the first images of ``a`` and ``b`` as plain floats."""
    return {k: float(f(a[:1], b[:1])[0].item()) for k, f in PAIR_MEASURES.items()}
