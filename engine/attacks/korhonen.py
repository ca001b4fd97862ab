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

Differences from MSU's code (``metrics/methods/korhonen-et-al/run.py`` of
adversarial-defenses-for-iqa), all reproduced by the preset ``msu-literal``
(``mask="gradient"``, ``activity="msu-code"``, see :func:`msu_activity_map`):

* the map multiplies the gradient only (``mask="gradient"``), which Adam mostly cancels;
* the map is ``scipy.ndimage.sobel`` of Y along the last axis only: a signed horizontal
  derivative, not a magnitude (vertical edges are missed, and pixels right of a dark→light
  edge get a negative weight, which reverses their gradient);
* Y is OpenCV's YCrCb luma of 0–255 floats, rescaled as (Y·219 + 16)/255 (scale and offset
  vanish in the normalisation, so only the BT.601 weights matter);
* the 1-px border is zeroed before dividing by the (signed) maximum; a map whose maximum is
  0 becomes all ones;
* the dilation's 5×5 disc has only its 4 corners off (ours: radius 2, 13 pixels);
* the map is divided by 255 before it multiplies the gradient: a no-op for plain gradient
  descent, but it moves the gradient towards Adam's ε = 1e-8;
* NaN gradients are zeroed (``torch.nan_to_num``; ±inf become the largest floats);
* MSU computes the map of the first image of a batch only (it runs one image per call);
  ours is per image. The robustness benchmark's copy ignores ``lower_better`` and does not
  zero NaNs; we keep the metric's sign.
"""
from __future__ import annotations

from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F

from engine.attacks._pixel_adam import adam_pixel_attack
from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun
from engine.attacks.sign_gradient import linf_presets
from engine.metrics.base import Metric, check_image_batch
from engine.spec.params import param


MSU_KORHONEN = "adversarial-defenses-for-iqa/metrics/methods/korhonen-et-al/run.py"
ACTIVITY_MAPS = ("magnitude", "msu-code")


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


def msu_footprint(device: torch.device | None = None) -> torch.Tensor:
    """MSU's 5×5 structuring element: all ones but the four corners."""
    k = torch.ones(5, 5, device=device)
    k[0, 0] = k[0, -1] = k[-1, 0] = k[-1, -1] = 0
    return k


def _dilate_ignoring_border(a: torch.Tensor, footprint: torch.Tensor) -> torch.Tensor:
    """Grey dilation (max over the footprint) where outside pixels never win, as OpenCV's
    ``cv2.dilate`` with its default border; ``a`` is :math:`(B, 1, H, W)`."""
    kh, kw = footprint.shape
    h, w = a.shape[-2:]
    padded = F.pad(a, (kw // 2, kw // 2, kh // 2, kh // 2), value=-float("inf"))
    out = torch.full_like(a, -float("inf"))
    for dy, dx in torch.nonzero(footprint).tolist():
        out = torch.maximum(out, padded[..., dy:dy + h, dx:dx + w])
    return out


def msu_activity_map(x: torch.Tensor) -> torch.Tensor:
    """The activity map exactly as MSU's code computes it (see the module docstring).

    Args:
        x: :math:`(B, 3, H, W)` RGB in [0, 1].

    Returns:
        :math:`(B, 1, H, W)`, signed, in [−m/255, 1/255] (m = |min|/max of the derivative).

    Example:
        >>> a = msu_activity_map(torch.rand(1, 3, 32, 32))
        >>> round(float(a.amax()) * 255, 4)
        1.0
    """
    check_image_batch(x)
    v = x.detach() * 255
    y = (0.299 * v[:, 0:1] + 0.587 * v[:, 1:2] + 0.114 * v[:, 2:3]) * 219 / 255 + 16 / 255
    # scipy.ndimage.sobel(axis=-1): [-1, 0, 1] across the columns, [1, 2, 1] down the rows
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=y.dtype)
    d = torch.zeros_like(y)
    d[..., 1:-1, 1:-1] = F.conv2d(y, k.view(1, 1, 3, 3))  # interior only: the border is zeroed
    peak = d.amax(dim=(1, 2, 3), keepdim=True)
    flat = peak == 0
    d = torch.where(flat, torch.ones_like(d), d / torch.where(flat, torch.ones_like(peak), peak))
    return _dilate_ignoring_border(d, msu_footprint(x.device).to(y.dtype)) / 255


@dataclass
class KorhonenParams(AttackParams):
    lr: float = param(0.005, min=0.0, max=1.0, help="Adam learning rate on the pixels", step=0.001)
    iters: int = param(10, min=1, max=10000, help="number of Adam steps")
    eps: float = param(0.0, min=0.0, max=1.0, help="L∞ budget (0 = unbounded, MSU default)",
                       unit="×255", step=1 / 255)
    mask: str = param("step", choices=("step", "gradient"),
                      help="'step': the activity map weights gradient and step (perturbation "
                           "follows texture); 'gradient': weight the gradient only (MSU's code)")
    activity: str = param("magnitude", choices=ACTIVITY_MAPS,
                          help="'magnitude': Sobel magnitude of the luma (the paper); 'msu-code': MSU's "
                               "signed horizontal Sobel map, /255, NaN gradients zeroed (needs mask='gradient')")


@ATTACKS.register("korhonen")
class Korhonen(Attack):
    """Adam on the pixels with the gradient masked by the spatial-activity map.

    Example:
        >>> out = Korhonen()(x, metric)
    """

    Params = KorhonenParams
    strength_param = "lr"
    presets = {"paper": {}, "msu-literal": {"mask": "gradient", "activity": "msu-code"}, **linf_presets()}
    literal_presets = {"msu-literal": MSU_KORHONEN}

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        check_image_batch(x)
        if p.activity == "msu-code":
            if p.mask != "gradient":
                raise ValueError("korhonen: activity='msu-code' is MSU's signed map, which only weights "
                                 "the gradient; set mask='gradient' (preset msu-literal)")
            return (yield from adam_pixel_attack(x, metric, lr=p.lr, iters=p.iters, keep_best=p.keep_best,
                                                 eps=p.eps, grad_weight=msu_activity_map(x),
                                                 zero_nan_grad=True))
        act = spatial_activity_map(x)
        return (yield from adam_pixel_attack(x, metric, lr=p.lr, iters=p.iters, keep_best=p.keep_best,
                                             eps=p.eps, scale=act if p.mask == "step" else None,
                                             grad_weight=act))
