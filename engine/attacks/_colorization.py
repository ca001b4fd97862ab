"""The colourisation network of ``cadv`` and what it needs: CIE Lab conversions, hint
selection, and loading the weights.

The network is the user-guided colourisation generator of Zhang, Zhu, Isola, Geng, Lin,
Yu, Efros ("Real-Time User-Guided Image Colorization with Learned Deep Priors",
SIGGRAPH 2017), the one cAdv (Bhattad et al., ICLR 2020) and MSU's
``metrics/methods/cadv/run.py`` use: from the luminance L, a sparse map of ab colour
hints and a mask saying where hints are, it predicts the ab channels at full resolution
(a regression head, tanh) and, at a quarter resolution, a distribution over 529
quantised ab bins (a classification head, used only to pick hints). The module names
and their layer order follow that network, so its published state dicts load as they are.

Lab here is "normalised Lab" as the network sees it: L' = (L − 50)/100, a' = a/110,
b' = b/110 (sRGB, D65 white), re-derived from the CIE formulas.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

#: MSU's file (their Docker set-up downloads it from here)
WEIGHTS_FILE = "cadv-colorization-model.pth"
WEIGHTS_URL = "https://titan.gml-team.ru:5003/fsdownload/ydzYpLFwY/cadv-colorization-model.pth"
#: the network halves the size three times: inputs are padded to a multiple of this
MULTIPLE = 8
AB_BINS = 529

_WHITE = (0.95047, 1.0, 1.08883)
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_XYZ_TO_RGB = ((3.24048134, -1.53715152, -0.49853633), (-0.96925495, 1.87599, 0.04155593),
               (0.05564664, -0.20404134, 1.05731107))


def _mix(x: torch.Tensor, m: Sequence[Sequence[float]]) -> torch.Tensor:
    """Per-pixel 3×3 matrix product on a :math:`(B, 3, H, W)` tensor."""
    return torch.einsum("ij,bjhw->bihw", torch.tensor(m, dtype=x.dtype, device=x.device), x)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] → normalised Lab (L' = (L − 50)/100, a' = a/110, b' = b/110).

    Shape:
        :math:`(B, 3, H, W)` → :math:`(B, 3, H, W)`.
    """
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(0) ** 2.4, rgb / 12.92)
    xyz = _mix(lin, _RGB_TO_XYZ) / torch.tensor(_WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    L = 116 * f[:, 1:2] - 16
    a = 500 * (f[:, 0:1] - f[:, 1:2])
    b = 200 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat(((L - 50) / 100, a / 110, b / 110), dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Normalised Lab → sRGB, **not** clamped (out-of-gamut colours leave [0, 1]; negative
    linear values are cut at 0 before the gamma, as the colourisation code does).

    Shape:
        :math:`(B, 3, H, W)` → :math:`(B, 3, H, W)`.
    """
    L, a, b = lab[:, 0:1] * 100 + 50, lab[:, 1:2] * 110, lab[:, 2:3] * 110
    fy = (L + 16) / 116
    f = torch.cat((fy + a / 500, fy, (fy - b / 200).clamp_min(0)), dim=1)
    xyz = torch.where(f > 0.2068966, f ** 3, (f - 16 / 116) / 7.787)
    xyz = xyz * torch.tensor(_WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    lin = _mix(xyz, _XYZ_TO_RGB).clamp_min(0)
    return torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(1e-12) ** (1 / 2.4) - 0.055, 12.92 * lin)


def _stage(cin: int, cout: int, convs: int, dilation: int = 1) -> nn.Sequential:
    """``convs`` × (3×3 conv + ReLU), then BatchNorm."""
    layers: list[nn.Module] = []
    for k in range(convs):
        layers += [nn.Conv2d(cin if k == 0 else cout, cout, 3, padding=dilation, dilation=dilation), nn.ReLU(True)]
    return nn.Sequential(*layers, nn.BatchNorm2d(cout))


class ColorNet(nn.Module):
    """User-guided colourisation generator (Zhang et al. 2017).

    An encoder of seven conv stages (the first three followed by a stride-2 subsampling,
    stages five and six dilated by 2) and a decoder of three transposed-conv upsamplings,
    each added to a 3×3 conv of the encoder stage at its resolution.

    Shape:
        - L: :math:`(B, 1, H, W)`, hints: :math:`(B, 2, H, W)`, mask: :math:`(B, 1, H, W)`;
          H and W multiples of 8.
        - Returns ``(logits, ab)``: :math:`(B, 529, H/4, W/4)` and :math:`(B, 2, H, W)` in [−1, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.model1 = _stage(4, 64, 2)
        self.model2 = _stage(64, 128, 2)
        self.model3 = _stage(128, 256, 3)
        self.model4 = _stage(256, 512, 3)
        self.model5 = _stage(512, 512, 3, dilation=2)
        self.model6 = _stage(512, 512, 3, dilation=2)
        self.model7 = _stage(512, 512, 3)
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model8 = nn.Sequential(nn.ReLU(True), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True),
                                    nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True), nn.BatchNorm2d(256))
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model9 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(True),
                                    nn.BatchNorm2d(128))
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, AB_BINS, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, L: torch.Tensor, hints: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c1 = self.model1(torch.cat((L, hints, mask), dim=1))
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c7 = self.model7(self.model6(self.model5(self.model4(c3[:, :, ::2, ::2]))))
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
        logits = self.model_class(c8)
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
        return logits, self.model_out(c10)


def gaussian_blur2d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of each channel (reflect padding, kernel ±3σ).

    Shape:
        :math:`(B, C, H, W)` → same.
    """
    if sigma <= 0:
        return x
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_h, pad_w = min(r, x.shape[2] - 1), min(r, x.shape[3] - 1)
    y = F.pad(x, (0, 0, pad_h, pad_h), mode="reflect")
    y = F.conv2d(y, k[r - pad_h: r + pad_h + 1].view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    y = F.pad(y, (pad_w, pad_w, 0, 0), mode="reflect")
    return F.conv2d(y, k[r - pad_w: r + pad_w + 1].view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def kmeans(points: torch.Tensor, k: int, generator: torch.Generator, iters: int = 30) -> torch.Tensor:
    """Lloyd's k-means from ``k`` distinct random points; the cluster of each point.

    Args:
        points: :math:`(N, D)`.
        k: clusters (at most N).
        generator: CPU generator of the initial centres.

    Returns:
        :math:`(N,)` int64 labels in ``[0, k)``.
    """
    n = points.shape[0]
    k = min(k, n)
    centres = points[torch.randperm(n, generator=generator)[:k].to(points.device)].clone()
    labels = torch.zeros(n, dtype=torch.long, device=points.device)
    for it in range(iters):
        new = torch.cdist(points, centres).argmin(dim=1)
        if it > 0 and torch.equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = points[labels == j]
            if members.shape[0]:
                centres[j] = members.mean(dim=0)
    return labels


def choose_hints(model: ColorNet, lab: torch.Tensor, generator: torch.Generator, *, hints: int = 50,
                 clusters: int = 8, chosen: int = 4, blur: float = 3.0,
                 prefer: str = "low") -> tuple[torch.Tensor, torch.Tensor]:
    """The colour hints of one image: pixels of the ``chosen`` colour clusters whose mean
    entropy (of the network's colour distribution without hints) is lowest (``prefer="low"``,
    what MSU's code does) or highest (``"high"``), sampled at random, carrying their true ab.

    Args:
        model: the colourisation network.
        lab: normalised Lab of one image :math:`(1, 3, H, W)`, H and W multiples of 8.
        generator: CPU generator (k-means start and the sampled pixels).
        hints: how many hint pixels.
        clusters: k of the k-means over the blurred ab values.
        chosen: how many clusters the hints come from.
        blur: σ (pixels) of the spatial Gaussian blur of ab before clustering.

    Returns:
        ``(hints, mask)``: :math:`(1, 2, H, W)` ab at the hint pixels, 0 elsewhere; and
        :math:`(1, 1, H, W)` 0.5 at the hint pixels, −0.5 elsewhere.
    """
    _, _, h, w = lab.shape
    L, ab = lab[:, :1], lab[:, 1:]
    with torch.no_grad():
        labels = kmeans(gaussian_blur2d(ab, blur).reshape(2, -1).T.float(), clusters, generator)
        logits, _ = model(L, torch.zeros_like(ab), torch.full_like(L, -0.5))
        p = F.softmax(logits, dim=1).clamp_min(1e-8)
        entropy = -(p * p.log()).sum(dim=1, keepdim=True)
        entropy = F.interpolate(entropy, size=(h, w), mode="nearest").reshape(-1)
        means = torch.stack([entropy[labels == j].mean() if bool((labels == j).any()) else
                             entropy.new_tensor(float("inf") if prefer == "low" else -float("inf"))
                             for j in range(int(labels.max()) + 1)])
        order = torch.argsort(means, descending=prefer == "high")[:chosen]
        pool = torch.nonzero(torch.isin(labels, order)).flatten().cpu()
        picked = pool[torch.randperm(pool.numel(), generator=generator)[:hints]].to(lab.device)
        hint_map = torch.zeros_like(ab).reshape(2, -1)
        mask = torch.full_like(L, -0.5).reshape(1, -1)
        hint_map[:, picked] = ab.reshape(2, -1)[:, picked]
        mask[:, picked] = 0.5
    return hint_map.reshape(1, 2, h, w), mask.reshape(1, 1, h, w)


def load_colorization(weights: str, device: torch.device | str, seed: int = 0) -> ColorNet:
    """The colourisation network in eval mode on ``device``.

    Args:
        weights: ``""`` for MSU's file (looked up in the weights folder, downloaded when
            missing), a path to a state dict, or ``"random"`` for untrained weights drawn
            from ``seed`` (tests and demonstrations only: the colours are meaningless).
        device: where to put it.

    Raises:
        engine.metrics.weights.WeightsUnavailable: MSU's file is missing and cannot be
            downloaded (the message names the file, URL and folder; exit code 6).
        engine.metrics.base.MetricError: the file cannot be read, or
            (:class:`engine.metrics.checkpoints.WeightsMismatch`) does not fit the network.
    """
    from engine.metrics.base import MetricError
    from engine.metrics.checkpoints import load_file_strict
    from engine.metrics.weights import ensure_weights

    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = ColorNet()
        return net.eval().to(device)
    path = Path(weights).expanduser() if weights else ensure_weights(WEIGHTS_FILE, WEIGHTS_URL, metric="cadv")
    if not path.is_file():
        raise MetricError(f"cadv: colourisation weights {str(path)!r} not found")
    net = ColorNet()
    # strict: every tensor of the file used, none missing (nested dicts and "module." accepted)
    load_file_strict(net, path, who="cadv", what="colourisation network")
    return net.eval().to(device)
