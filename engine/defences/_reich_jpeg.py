"""Reich et al.'s differentiable JPEG with straight-through rounding (not a defence module).

Reich, Debnath, Patel, Chakradhar, "Differentiable JPEG: The Devil is in the Details",
WACV 2024 (``diff_jpeg``, ``DiffJPEGCoding(ste=True)``), the codec MSU's ``diffjpeg``
defence runs. Its forward pass is a real JPEG's lossy step: the DCT coefficients are
rounded exactly (the backward pass uses the gradient of ``round(v) + (v − round(v))³``),
quality tables scaled as libjpeg does; the pixel values themselves are not quantised.

Pipeline (values on the 0–255 scale): JFIF RGB→YCbCr (chroma offset 128, not rounded);
4:2:0 chroma by an anti-aliased half-size resize (kornia's ``rescale``: 3×3 Gaussian of
σ 0.5, then a bilinear half-size sample); 8×8 blocks, orthonormal DCT of ``v − 128``;
divide by the scaled table, round (straight-through), multiply back; inverse DCT + 128;
chroma enlarged ×2 bilinearly; YCbCr→RGB with the inverted matrix; clipped to [0, 255]
(straight-through: gradient 1 inside, 10⁻³ outside). The sides must be multiples of 16.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

#: ITU-T T.81 Annex K tables (luma, chroma)
LUMA_TABLE = [
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]]
CHROMA_TABLE = [[17, 18, 24, 47] + [99] * 4, [18, 21, 26, 66] + [99] * 4,
                [24, 26, 56] + [99] * 5, [47, 66] + [99] * 6] + [[99] * 8] * 4

#: JFIF RGB → YCbCr (rows: Y, Cb, Cr), offsets (0, 128, 128)
RGB_TO_YCBCR = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]


class _RoundSTE(torch.autograd.Function):
    """Exact rounding forward; the derivative of the cubic soft rounding backward."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(v)
        return torch.round(v)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (v,) = ctx.saved_tensors
        return grad * 3 * (v - torch.round(v)) ** 2


class _ClipSTE(torch.autograd.Function):
    """Exact clipping forward; gradient 1 inside the range, 10⁻³ outside."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.lo, ctx.hi = lo, hi
        return v.clamp(lo, hi)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (v,) = ctx.saved_tensors
        inside = (v >= ctx.lo) & (v <= ctx.hi)
        return grad * torch.where(inside, 1.0, 1e-3).to(grad.dtype), None, None


def scaled_table(table: list[list[int]], q: int, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """libjpeg's quality scaling: s = ⌊5000/q⌋ below 50, else 200 − 2q; entries
    ⌊(T·s + 50)/100⌋ clipped to [1, 255]."""
    s = math.floor(5000.0 / q) if q < 50 else 200 - 2 * q
    t = torch.tensor(table, dtype=dtype, device=device)
    return torch.floor((t * s + 50.0) / 100.0).clamp(1, 255)


def _dct_basis(dtype: torch.dtype, device: Any) -> torch.Tensor:
    """The 8×8 orthonormal DCT-II matrix C: coefficients = C · block · Cᵀ."""
    k = torch.arange(8, dtype=torch.float64)
    c = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * 0.5
    c[0] /= math.sqrt(2)
    return c.to(dtype=dtype, device=device)


def _blocks(v: torch.Tensor) -> torch.Tensor:
    """(B, H, W) → (B, H/8, W/8, 8, 8)."""
    b, h, w = v.shape
    return v.reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)


def _unblocks(v: torch.Tensor) -> torch.Tensor:
    b, nh, nw = v.shape[:3]
    return v.permute(0, 1, 3, 2, 4).reshape(b, nh * 8, nw * 8)


def _code_plane(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """DCT, quantise (straight-through rounding), dequantise, inverse DCT of one plane.

    Each block is a 64-vector and the 2-D DCT one 64×64 matrix (C ⊗ C), so the whole
    plane is one matrix product each way."""
    c = _dct_basis(plane.dtype, plane.device)
    k = torch.kron(c, c)  # [(u, v), (x, y)] = C[u, x]·C[v, y]
    blocks = _blocks(plane)
    flat = (blocks - 128.0).reshape(-1, 64)
    coef = (flat @ k.T).reshape(blocks.shape)
    coef = _RoundSTE.apply(coef / table) * table
    return _unblocks((coef.reshape(-1, 64) @ k).reshape(blocks.shape) + 128.0)


def reich_jpeg(x255: torch.Tensor, q: int) -> torch.Tensor:
    """JPEG-code a batch on the 0–255 scale (differentiable, straight-through rounding).

    Args:
        x255: :math:`(B, 3, H, W)` RGB in [0, 255], H and W multiples of 16.
        q: quality 1–100.

    Returns:
        :math:`(B, 3, H, W)` in [0, 255] (not rounded to integers).
    """
    from kornia.geometry.transform import rescale

    h, w = x255.shape[-2:]
    if h % 16 or w % 16:
        raise ValueError(f"reich_jpeg needs sides that are multiples of 16, got {h}×{w}")
    m = torch.tensor(RGB_TO_YCBCR, dtype=x255.dtype, device=x255.device)
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=x255.dtype, device=x255.device)
    ycc = torch.einsum("ij,bjhw->bihw", m, x255) + offset[None, :, None, None]
    chroma = rescale(ycc[:, 1:], 0.5, interpolation="bilinear", align_corners=False, antialias=True)
    ty = scaled_table(LUMA_TABLE, q, x255.dtype, x255.device)
    tc = scaled_table(CHROMA_TABLE, q, x255.dtype, x255.device)
    y = _code_plane(ycc[:, 0], ty)
    cb, cr = (F.interpolate(_code_plane(chroma[:, i], tc)[:, None], scale_factor=2, mode="bilinear",
                            align_corners=False) for i in (0, 1))
    ycc = torch.cat([y[:, None], cb, cr], 1) - offset[None, :, None, None]
    rgb = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), ycc)
    return _ClipSTE.apply(rgb, 0.0, 255.0)


def msu_diffjpeg(x: torch.Tensor, q: int) -> torch.Tensor:
    """MSU's ``diffjpeg`` defence: reflect-pad the bottom/right by ``16 − side mod 16``
    (16 when the side already is a multiple), code at quality ``q`` on the 0–255 scale,
    crop back, divide by 255.

    Args:
        x: :math:`(B, 3, H, W)` in [0, 1] (sides above 16).

    Returns:
        :math:`(B, 3, H, W)`.
    """
    h, w = x.shape[-2:]
    padded = F.pad(x, (0, 16 - w % 16, 0, 16 - h % 16), mode="reflect")
    return reich_jpeg(padded * 255, q)[..., :h, :w] / 255
