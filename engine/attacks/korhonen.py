"""Korhonen & You (2022): Adam on the pixels, perturbation hidden in textured areas.

J. Korhonen and J. You, "Adversarial Attacks against Blind Image Quality Assessment
Models", ACM QoEVMA 2022. MSU defaults: Adam lr 0.005, 10 iterations.

The gradient of the MSU loss is weighted by a spatial-activity map A ∈ [0, 1]: the Sobel
magnitude of the luma (Y of YCbCr), divided by its maximum, dilated with a 5×5 disc.

Why the map also scales the step (``mask="step"``, the default): Adam divides each
element's first moment by the root of its second moment, so multiplying a pixel's gradient
by a constant weight cancels out (except where the weight is exactly 0). Weighting only
the gradient (``mask="gradient"``, MSU's literal recipe) therefore spreads the
perturbation almost uniformly. With ``mask="step"`` we optimise δ in ``x = x₀ + A ⊙ δ``:
the gradient Adam sees is ``A ⊙ ∇ₓ`` (the masked gradient) and the pixel change is ``A``
times the Adam step, so the perturbation concentrates where the activity is high.

Constrains: image in [0, 1]; optional L∞ ≤ ε (``eps > 0``; 0 = unbounded, the MSU default).
"""
from __future__ import annotations

from dataclasses import dataclass

import kornia
import torch

from engine.attacks._pixel_adam import adam_pixel_attack
from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun
from engine.attacks.sign_gradient import linf_presets
from engine.metrics.base import Metric, check_image_batch
from engine.params import param


def disc_kernel(size: int = 5, device: torch.device | None = None) -> torch.Tensor:
    """A binary disc structuring element of odd ``size`` (radius ``size // 2``).

    Example:
        >>> disc_kernel(5).int()[0].tolist()
        [0, 0, 1, 0, 0]
    """
    r = size // 2
    ax = torch.arange(size, device=device, dtype=torch.float32) - r
    return ((ax[:, None] ** 2 + ax[None, :] ** 2) <= r * r).float()


def spatial_activity_map(x: torch.Tensor, disc_size: int = 5) -> torch.Tensor:
    """Korhonen's spatial-activity map: Sobel magnitude of Y, max-normalised, dilated.

    Args:
        x: :math:`(B, 3, H, W)` RGB in [0, 1].
        disc_size: side of the disc used for the dilation.

    Returns:
        :math:`(B, 1, H, W)` in [0, 1] (1 at the most active pixel of each image).

    Example:
        >>> a = spatial_activity_map(torch.rand(2, 3, 32, 32))
        >>> a.shape, float(a.amax())
        (torch.Size([2, 1, 32, 32]), 1.0)
    """
    check_image_batch(x)
    y = kornia.color.rgb_to_ycbcr(x.detach())[:, :1]
    g = kornia.filters.spatial_gradient(y, mode="sobel", normalized=True)  # (B, 1, 2, H, W)
    mag = g.pow(2).sum(dim=2).sqrt()  # not kornia.filters.sobel: its +eps makes flat areas non-zero
    mag = mag / mag.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    kernel = disc_kernel(disc_size, device=x.device).to(x.dtype)
    return kornia.morphology.dilation(mag, kernel).clamp(0.0, 1.0)


@dataclass
class KorhonenParams(AttackParams):
    lr: float = param(0.005, min=0.0, max=1.0, help="Adam learning rate on the pixels", step=0.001)
    iters: int = param(10, min=1, max=10000, help="number of Adam steps")
    eps: float = param(0.0, min=0.0, max=1.0, help="L∞ budget (0 = unbounded, MSU default)",
                       unit="×255", step=1 / 255)
    mask: str = param("step", choices=("step", "gradient"),
                      help="'step': the activity map weights gradient and step (perturbation "
                           "follows texture); 'gradient': weight the gradient only (MSU literal)")


@ATTACKS.register("korhonen")
class Korhonen(Attack):
    """Adam on the pixels with the gradient masked by the spatial-activity map.

    Example:
        >>> out = Korhonen()(x, metric)
    """

    Params = KorhonenParams
    strength_param = "lr"
    presets = {"msu-default": {}, "msu-literal": {"mask": "gradient"}, **linf_presets()}

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        check_image_batch(x)
        act = spatial_activity_map(x)
        return (yield from adam_pixel_attack(x, metric, lr=p.lr, iters=p.iters, keep_best=p.keep_best,
                                             eps=p.eps, scale=act if p.mask == "step" else None,
                                             grad_weight=act))
