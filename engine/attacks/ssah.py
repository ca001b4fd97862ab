"""SSAH adapted to IQA: semantic attack with a low-frequency constraint.

C. Luo, Q. Lin, W. Xie, B. Wu, J. Xie, L. Shen, "Frequency-driven Imperceptible
Adversarial Attack on Semantic Similarity" (SSAH), CVPR 2022; adapted to quality metrics
as in MSU's benchmark: the semantic-similarity term is replaced by the MSU loss.

Adam on the pixels minimising ``(1 − sign·M(x)/range) + λ·SmoothL1(LL(x), LL(x₀))``, LL
the low-frequency band of a one-level Haar DWT, so the perturbation goes to the high
frequencies where it is less visible. MSU defaults: Adam lr 0.001, 10 iterations, λ 0.1.

Constrains: image in [0, 1]; the low-frequency band stays close to the original's;
optional L∞ ≤ ε (``eps > 0``; 0 = unbounded, the MSU default).

Differences from MSU's code (``metrics/methods/ssah/run.py`` of adversarial-defenses-for-iqa,
which keeps SSAH's own transform code), reproduced by the preset ``msu-literal``
(``low_band="msu-code"``, see :func:`msu_low_frequency_loss`):

* the low-frequency image is the inverse Haar transform of the LL band alone (its
  ``DWT_2D_tiny``/``IDWT_2D_tiny`` pair), i.e. the full-size image of 2×2 block means, and
  the SmoothL1 term **sums** over its pixels and channels (SSAH's ``reduction='sum'``):
  4·Σ SmoothL1((LL(x) − LL(x₀))/2) over the half-size band, against our per-image mean of
  SmoothL1(LL(x) − LL(x₀)). For small differences the sum weighs the term 0.75·H·W
  times more (5·10⁴ at 256²): its gradient is λ·clamp(Δ, −1, 1) per pixel, Δ the block-mean
  change, and it pulls the block means back where ours barely acts (see the tests).
  The file also holds a full inverse transform whose LL term is commented out; the attack
  does not use it;
* odd sizes are zero-padded at the bottom/right to even before anything else: the metric
  scores the padded image, Adam moves the padded pixels too, and the result is cropped
  (we replicate-pad inside the transform only);
* NaN gradients are zeroed (``torch.nan_to_num``);
* MSU runs one image per call (the summed term would mix a batch); ours is per image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.attacks._pixel_adam import adam_pixel_attack
from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun
from engine.attacks.sign_gradient import linf_presets
from engine.metrics.base import Metric, check_image_batch
from engine.spec.params import param


def haar_dwt(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of the orthonormal 2-D Haar DWT, per channel (differentiable, a strided conv).

    Odd sizes are padded by replicating the last row/column.

    Args:
        x: :math:`(B, C, H, W)`.

    Returns:
        ``(LL, LH, HL, HH)``, each :math:`(B, C, ⌈H/2⌉, ⌈W/2⌉)`; ``LL`` is the 2×2 block sum / 2.

    Example:
        >>> ll, lh, hl, hh = haar_dwt(torch.ones(1, 3, 4, 4))
        >>> float(ll[0, 0, 0, 0]), float(hh.abs().max())
        (2.0, 0.0)
    """
    if x.dim() != 4:
        raise ValueError(f"haar_dwt: expected a B×C×H×W tensor, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    lo = torch.tensor([1.0, 1.0], dtype=x.dtype, device=x.device) / 2 ** 0.5
    hi = torch.tensor([1.0, -1.0], dtype=x.dtype, device=x.device) / 2 ** 0.5
    filt = torch.stack([torch.outer(lo, lo), torch.outer(hi, lo), torch.outer(lo, hi), torch.outer(hi, hi)])
    weight = filt.unsqueeze(1).repeat(c, 1, 1, 1)  # (4C, 1, 2, 2), grouped per channel
    out = F.conv2d(x, weight, stride=2, groups=c)
    out = out.view(b, c, 4, out.shape[-2], out.shape[-1])
    return out[:, :, 0], out[:, :, 1], out[:, :, 2], out[:, :, 3]


def haar_ll(x: torch.Tensor) -> torch.Tensor:
    """Only the LL band of :func:`haar_dwt` (2×2 block sums / 2), computed with strided
    slices: the same values, about twice as fast forward+backward as the full transform."""
    if x.dim() != 4:
        raise ValueError(f"haar_ll: expected a B×C×H×W tensor, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2


class _LowBandSmoothL1(torch.autograd.Function):
    """Per-image ``mean SmoothL1(LL(x) − ll0)`` for even H, W with a hand-written backward:
    ∂/∂x = clamp(LL(x) − ll0, −1, 1) / (2·n) spread over each 2×2 block, one full-size pass
    instead of autograd's several (the term runs every iteration at full resolution)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, ll0: torch.Tensor) -> torch.Tensor:
        d = haar_ll(x) - ll0
        ad = d.abs()
        per = torch.where(ad < 1.0, 0.5 * d * d, ad - 0.5).mean(dim=(1, 2, 3))
        ctx.save_for_backward(d.clamp(-1.0, 1.0))
        return per

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (dc,) = ctx.saved_tensors
        b, c, h2, w2 = dc.shape
        gl = dc * (g.view(-1, 1, 1, 1) / (2.0 * c * h2 * w2))
        gx = gl[:, :, :, None, :, None].expand(b, c, h2, 2, w2, 2).reshape(b, c, 2 * h2, 2 * w2)
        return gx, None


def low_frequency_loss(x: torch.Tensor, x0: torch.Tensor, ll0: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image SmoothL1 (β = 1, mean) between the Haar LL bands of ``x`` and ``x0``, :math:`(B,)`.

    Differentiable w.r.t. ``x``; ``ll0`` may pass ``haar_ll(x0)`` precomputed.
    """
    ll0 = haar_ll(x0) if ll0 is None else ll0
    if x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0:
        return _LowBandSmoothL1.apply(x, ll0.detach())
    return F.smooth_l1_loss(haar_ll(x), ll0, reduction="none").mean(dim=(1, 2, 3))


MSU_SSAH = "adversarial-defenses-for-iqa/metrics/methods/ssah/run.py"
LOW_BANDS = ("mean", "msu-code")


def block_means(x: torch.Tensor) -> torch.Tensor:
    """The full-size image of 2×2 block means (the Haar transform's LL band, inverted alone),
    for even H, W."""
    return F.avg_pool2d(x, 2).repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def msu_low_frequency_loss(x: torch.Tensor, low0: torch.Tensor) -> torch.Tensor:
    """Per-image ``Σ SmoothL1(block_means(x) − low0)`` over channels and pixels, :math:`(B,)`
    (β = 1; ``low0 = block_means(x0)``), as MSU's SSAH code; H, W even."""
    return F.smooth_l1_loss(block_means(x), low0, reduction="none").sum(dim=(1, 2, 3))


def pad_to_even(x: torch.Tensor) -> torch.Tensor:
    """Zero rows/columns at the bottom/right up to even H and W (MSU's SSAH)."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, w % 2, 0, h % 2)) if h % 2 or w % 2 else x


@dataclass
class SSAHParams(AttackParams):
    lr: float = param(0.001, min=0.0, max=1.0, help="Adam learning rate on the pixels", step=0.0005)
    iters: int = param(10, min=1, max=10000, help="number of Adam steps")
    lam: float = param(0.1, min=0.0, max=1000.0, help="weight of the low-frequency SmoothL1 term")
    eps: float = param(0.0, min=0.0, max=1.0, help="L∞ budget (0 = unbounded, MSU default)",
                       unit="×255", step=1 / 255)
    low_band: str = param("mean", choices=LOW_BANDS,
                          help="'mean': mean SmoothL1 between the Haar LL bands; 'msu-code': MSU's summed "
                               "SmoothL1 of the block-mean images, odd sizes zero-padded, NaN gradients zeroed")


@ATTACKS.register("ssah")
class SSAH(Attack):
    """Adam on the MSU loss plus a Haar low-frequency fidelity term.

    Example:
        >>> out = SSAH()(x, metric)
    """

    Params = SSAHParams
    strength_param = "lr"
    presets = {"paper": {}, "msu-literal": {"low_band": "msu-code"}, **linf_presets()}
    literal_presets = {"msu-literal": MSU_SSAH}

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        check_image_batch(x)
        x0 = x.detach()
        if p.low_band == "msu-code":
            xp = pad_to_even(x0)
            low0 = block_means(xp)

            def msu_extra(xi: torch.Tensor) -> torch.Tensor:
                return p.lam * msu_low_frequency_loss(xi, low0)

            return (yield from adam_pixel_attack(xp, metric, lr=p.lr, iters=p.iters, keep_best=p.keep_best,
                                                 eps=p.eps, extra_loss=msu_extra, zero_nan_grad=True,
                                                 crop=tuple(x0.shape[-2:])))
        ll0 = haar_ll(x0)

        def extra(xi: torch.Tensor) -> torch.Tensor:
            return p.lam * low_frequency_loss(xi, x0, ll0)

        return (yield from adam_pixel_attack(x0, metric, lr=p.lr, iters=p.iters, keep_best=p.keep_best,
                                             eps=p.eps, extra_loss=extra))
