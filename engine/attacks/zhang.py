"""Zhang et al. perceptual attack: raise the metric while staying perceptually close.

W. Zhang, D. Li, X. Min, G. Zhai, G. Guo, X. Yang, K. Ma, "Perceptual Attacks of
No-Reference Image Quality Models with Human-in-the-Loop", NeurIPS 2022.

Adam on the pixels minimising ``D(x, x₀) − sign·M(x)/range`` (+1, a constant that keeps
the logged loss on MSU's scale), D a full-reference distance: ``ssim`` (1 − SSIM, 11-px
Gaussian window on the luma as in pyiqa, computed locally: always available), ``lpips`` or ``dists``
(pyiqa's full-reference models; they need ImageNet backbone weights and their own
calibration file: a :class:`~engine.metrics.base.MetricError` names every missing file, its
URL and the folder to put it in, checked without touching the network). MSU defaults:
Adam lr 0.005, 10 iterations. The default distance is SSIM because it runs offline.

Constrains: image in [0, 1]; the distance term keeps it close to x₀; optional L∞ ≤ ε
(``eps > 0``; 0 = unbounded, the MSU default).

Against MSU's code (``metrics/methods/zhang-et-al-dists/run.py`` of
adversarial-defenses-for-iqa; the SSIM and LPIPS variants are not published there) the loop
is the same: Adam on the pixels, loss ``D(x, x₀) − sign·M(x)/range``, clamp to [0, 1] after
each step. No preset is marked literal because:

* MSU's distances come from ``IQA_pytorch`` (``DISTS(as_loss=True)``); ours are pyiqa's
  LPIPS/DISTS and a local SSIM, not compared with IQA_pytorch numerically;
* MSU zeroes NaN gradients and NaN pixels after each step (no effect on finite runs).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from engine.attacks._pixel_adam import adam_pixel_attack
from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun
from engine.attacks.sign_gradient import linf_presets
from engine.metrics.base import Availability, Metric, MetricError, check_image_batch
from engine.spec.params import param

DISTANCES = ("ssim", "lpips", "dists")

#: the files each pyiqa full-reference model needs: (folder kind, file name, URL)
_WEIGHTS = {
    "lpips": [("torchvision", "alexnet-owt-7be5be79.pth",
               "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
              ("pyiqa", "LPIPS_v0.1_alex-df73285e.pth",
               "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/LPIPS_v0.1_alex-df73285e.pth")],
    "dists": [("torchvision", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
              ("pyiqa", "DISTS_weights-f5e65c96.pth",
               "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/DISTS_weights-f5e65c96.pth")],
}

_CACHE: dict[tuple[str, str], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {}


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None, dtype=torch.float32) -> torch.Tensor:
    """The normalised 1-D Gaussian of SSIM's window (Wang et al. 2004: 11 taps, σ = 1.5)."""
    ax = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    k = torch.exp(-ax.pow(2) / (2 * sigma ** 2))
    return k / k.sum()


def luma(x: torch.Tensor) -> torch.Tensor:
    """Y = 0.299 R + 0.587 G + 0.114 B (YIQ/BT.601 luma, as pyiqa's SSIM), :math:`(B, 1, H, W)`."""
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _blur_valid(t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter, 'valid' borders, per channel."""
    c, n = t.shape[1], k.numel()
    t = F.conv2d(t, k.view(1, 1, 1, n).expand(c, 1, 1, n), groups=c)
    return F.conv2d(t, k.view(1, 1, n, 1).expand(c, 1, n, 1), groups=c)


class SSIMDistance:
    """``1 − SSIM(x, ref)`` per image, on the luma, with the reference's statistics cached.

    SSIM as in pyiqa (and the authors' MATLAB code): luma, 11-tap Gaussian window σ 1.5,
    'valid' borders, C1 = 0.01², C2 = 0.03² (data range 1), contrast-structure term
    clipped at 0; no rounding to 8 bits (so the gradient is exact). Separable filtering
    and the cached reference keep one evaluation to three filtered maps.

    Args:
        ref: :math:`(B, 3, H, W)` in [0, 1]; H, W ≥ 11.

    Example:
        >>> d = SSIMDistance(x0)
        >>> d(x0)            # zeros
    """

    C1 = 0.01 ** 2
    C2 = 0.03 ** 2

    def __init__(self, ref: torch.Tensor, window: int = 11, sigma: float = 1.5) -> None:
        check_image_batch(ref)
        if min(ref.shape[-2:]) < window:
            raise ValueError(f"SSIM needs images of at least {window}×{window} px, got {tuple(ref.shape[-2:])}")
        self.k = gaussian_window(window, sigma, ref.device, ref.dtype)
        self.y = luma(ref.detach())
        m = _blur_valid(torch.cat([self.y, self.y * self.y], dim=1), self.k)
        self.mu_y = m[:, :1]
        self.var_y = m[:, 1:] - self.mu_y.pow(2)

    def ssim_map(self, x: torch.Tensor) -> torch.Tensor:
        xl = luma(x)
        m = _blur_valid(torch.cat([xl, xl * xl, xl * self.y], dim=1), self.k)
        mu_x, exx, exy = m[:, :1], m[:, 1:2], m[:, 2:]
        var_x = exx - mu_x.pow(2)
        cov = exy - mu_x * self.mu_y
        cs = F.relu((2 * cov + self.C2) / (var_x + self.var_y + self.C2))
        return (2 * mu_x * self.mu_y + self.C1) / (mu_x.pow(2) + self.mu_y.pow(2) + self.C1) * cs

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.ssim_map(x).mean(dim=(1, 2, 3))


def ssim_distance(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image ``1 − SSIM(x, ref)`` (see :class:`SSIMDistance`), :math:`(B,)`."""
    return SSIMDistance(ref)(x)


def _folder(kind: str) -> str:
    hub = torch.hub.get_dir()
    if kind == "torchvision":
        return os.path.join(hub, "checkpoints")
    # pyiqa fixes its cache folder when first imported; before that it will be hub/pyiqa
    util = sys.modules.get("pyiqa.utils.download_util")
    return getattr(util, "DEFAULT_CACHE_DIR", None) or os.path.join(hub, "pyiqa")


def missing_weights(name: str) -> list[str]:
    """The files a full-reference distance lacks locally, each as 'file (URL) → folder'."""
    out = []
    for kind, fname, url in _WEIGHTS.get(name, []):
        folder = _folder(kind)
        if not os.path.isfile(os.path.join(folder, fname)):
            out.append(f"{fname} (download {url}) → put it in {folder}")
    return out


def perceptual_distance(name: str, device: torch.device | str = "cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A differentiable full-reference distance ``f(x, ref) -> (B,)``, lower = closer.

    Raises:
        MetricError: the weights of LPIPS/DISTS are not present locally (never downloads
            by surprise, never hangs).
    """
    if name not in DISTANCES:
        raise MetricError(f"zhang: unknown distance {name!r}; choose one of {', '.join(DISTANCES)}")
    if name == "ssim":
        return ssim_distance
    key = (name, str(torch.device(device)))
    if key in _CACHE:
        return _CACHE[key]
    missing = missing_weights(name)
    if missing:
        raise MetricError(f"zhang: the {name.upper()} distance needs weights that are not on this "
                          "machine: " + "; ".join(missing))
    try:
        import pyiqa
        model = pyiqa.create_metric(name, as_loss=True, loss_reduction="none", device=torch.device(device))
    except Exception as exc:
        raise MetricError(f"zhang: could not build the {name.upper()} distance: {exc}") from exc
    model.eval()

    def dist(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return model(x, ref).reshape(x.shape[0])

    _CACHE[key] = dist
    return dist


@dataclass
class ZhangParams(AttackParams):
    lr: float = param(0.005, min=0.0, max=1.0, help="Adam learning rate on the pixels", step=0.001)
    iters: int = param(10, min=1, max=10000, help="number of Adam steps")
    distance: str = param("ssim", choices=DISTANCES, help="full-reference distance D(x, x₀) in the loss")
    eps: float = param(0.0, min=0.0, max=1.0, help="L∞ budget (0 = unbounded, MSU default)",
                       unit="×255", step=1 / 255)


@ATTACKS.register("zhang")
class Zhang(Attack):
    """Adam on ``D(x, x₀) − sign·M(x)/range``.

    Example:
        >>> out = Zhang(distance="ssim")(x, metric)
    """

    Params = ZhangParams
    strength_param = "lr"
    presets = {"msu-default": {}, "lpips": {"distance": "lpips"}, "dists": {"distance": "dists"},
               **linf_presets()}

    @classmethod
    def availability(cls) -> Availability:
        """Ready (the SSIM distance always runs); the reason lists distances lacking weights."""
        lacking = [d for d in ("lpips", "dists") if missing_weights(d)]
        return Availability("ready", f"{', '.join(lacking)} distance(s) need weights not on this machine"
                            if lacking else "")

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        check_image_batch(x)
        x0 = x.detach()
        if p.distance == "ssim":
            extra = SSIMDistance(x0)
        else:
            dist = perceptual_distance(p.distance, x.device)

            def extra(xi: torch.Tensor) -> torch.Tensor:
                return dist(xi, x0)

        return (yield from adam_pixel_attack(x0, metric, lr=p.lr, iters=p.iters, keep_best=p.keep_best,
                                             eps=p.eps, extra_loss=extra))
