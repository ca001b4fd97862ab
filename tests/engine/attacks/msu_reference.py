"""MSU's published attacks re-derived as plain loops, one image at a time (as MSU runs them).

Written from the descriptions of MSU's code (issue 15, and the reference files named in
each attack's ``literal_presets``), independently of the engine: plain autograd, the
default (non-fused) ``torch.optim.Adam``, numpy/scipy for the Korhonen map and explicit
Haar matrices for SSAH. The loss is ``1 − sign·M(x)/range``: the metric's sign is kept
(the robustness benchmark's MI-FGSM, AMI-FGSM and FGSM drop it; see the docstrings).
Used by ``test_msu_literal.py`` and ``bench/bench_msu_conformance.py``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy import ndimage

from engine.metrics.base import Metric

Reference = Callable[[torch.Tensor, Metric], torch.Tensor]


def msu_loss(metric: Metric, x: torch.Tensor) -> torch.Tensor:
    """The scalar MSU loss of one image."""
    return (1 - metric.sign * metric.score(x, grad=True) / metric.range).sum()


def per_image(reference: Reference, x: torch.Tensor, metric: Metric) -> torch.Tensor:
    """Run a one-image reference on every image of a batch."""
    return torch.cat([reference(x[i:i + 1], metric) for i in range(x.shape[0])])


def msu_ifgsm(x, metric, eps=10 / 255, alpha=1 / 255, iters=10, iterates=None):
    """MSU's I-FGSM: additive p, straight-through clamp of the image, sign step on p, p
    clipped to ±ε. Appends every iterate to ``iterates`` if given (works on a batch)."""
    p = torch.zeros_like(x, requires_grad=True)
    for _ in range(iters):
        if iterates is not None:
            iterates.append((x + p).detach().clamp(0.0, 1.0))
        res = x + p
        res.data.clamp_(0.0, 1.0)
        loss = 1 - metric.sign * metric.score(res, grad=True) / metric.range
        loss.sum().backward()
        p.data -= alpha * torch.sign(p.grad)
        p.data.clamp_(-eps, eps)
        p.grad.zero_()
    res = (x + p).detach().clamp(0.0, 1.0)
    if iterates is not None:
        iterates.append(res)
    return res


def msu_fgsm(x, metric, eps=10 / 255):
    """MSU's FGSM (std-fgsm): one step x ← clamp(x − ε·sign(∇), 0, 1)."""
    x = x.clone().requires_grad_(True)
    msu_loss(metric, x).backward()
    return (x.detach() - eps * torch.sign(x.grad)).clamp(0.0, 1.0)


def msu_mifgsm(x, metric, eps=10 / 255, alpha=1 / 255, iters=10, nu=1.0):
    """MSU's MI-FGSM: I-FGSM whose sign is taken of g ← ∇ + ν·g (raw gradient)."""
    p = torch.zeros_like(x, requires_grad=True)
    g_prev = 0
    for _ in range(iters):
        res = x + p
        res.data.clamp_(0.0, 1.0)
        msu_loss(metric, res).backward()
        g = p.grad + g_prev * nu
        g_prev = g
        p.data -= alpha * torch.sign(g)
        p.data.clamp_(-eps, eps)
        p.grad = None
    return (x + p).detach().clamp(0.0, 1.0)


def msu_amifgsm(x, metric, eps=10 / 255, iters=10, nu=1.0):
    """MSU's AMI-FGSM: the image itself steps by ε/iters·sign(∇ + ν·g), clamped to [0, 1]."""
    x = x.clone().requires_grad_(True)
    g_prev = 0
    lr = eps / iters
    for _ in range(iters):
        msu_loss(metric, x).backward()
        g = x.grad + g_prev * nu
        g_prev = g
        x.data -= lr * torch.sign(g)
        x.data.clamp_(0.0, 1.0)
        x.grad = None
    return x.detach()


def msu_korhonen_map(x: torch.Tensor) -> torch.Tensor:
    """MSU's spatial-activity map of one image, with numpy and scipy: Y of 0–255 floats
    (BT.601, as OpenCV's YCrCb) scaled (Y·219 + 16)/255, ``ndimage.sobel`` along the last
    axis, 1-px border zeroed, divided by the maximum, dilated with the 5×5 disc (corners
    off; outside pixels ignored), divided by 255. Returns :math:`(1, 1, H, W)`."""
    im = (x[0] * 255).permute(1, 2, 0).numpy().astype(np.float32)
    y = 0.299 * im[..., 0] + 0.587 * im[..., 1] + 0.114 * im[..., 2]
    y = ((y * (235 - 16) + 16) / 255.0).astype(np.float32)
    sob = ndimage.sobel(y)
    z = np.zeros_like(sob)
    z[1:-1, 1:-1] = sob[1:-1, 1:-1]
    peak = z.max()
    if peak == 0:
        z, peak = z + 1, 1
    z = z / peak
    disc = np.ones((5, 5), dtype=bool)
    disc[0, 0] = disc[0, -1] = disc[-1, 0] = disc[-1, -1] = False
    dil = ndimage.maximum_filter(z, footprint=disc, mode="constant", cval=-np.inf)
    return torch.from_numpy((dil / 255).astype(np.float32))[None, None]


def msu_korhonen(x, metric, lr=0.005, iters=10):
    """MSU's Korhonen et al.: Adam on the pixels, the NaN-zeroed gradient times the map."""
    sp_map = msu_korhonen_map(x)
    x = x.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(iters):
        msu_loss(metric, x).backward()
        x.grad = torch.nan_to_num(x.grad) * sp_map
        opt.step()
        x.data.clamp_(0.0, 1.0)
        opt.zero_grad()
    return x.detach()


def haar_low_matrix(n: int) -> torch.Tensor:
    """The (n/2 × n) Haar low-pass analysis matrix: row i has 1/√2 at columns 2i, 2i+1."""
    m = np.zeros((n // 2, n), dtype=np.float32)
    for i in range(n // 2):
        m[i, 2 * i] = m[i, 2 * i + 1] = 1 / np.sqrt(2)
    return torch.from_numpy(m)


def msu_ssah(x, metric, lr=0.001, iters=10, lam=0.1):
    """MSU's SSAH: zero-pad to even, low(x) = Lᵀ(L x Lᵀ)L (inverse Haar of the LL band),
    Adam on the MSU loss + λ·SmoothL1(low(x), low(x₀)) summed, NaN gradients zeroed,
    clamp; crop back."""
    h, w = x.shape[-2:]
    xp = torch.zeros(1, 3, h + h % 2, w + w % 2)
    xp[..., :h, :w] = x
    lh, lw = haar_low_matrix(xp.shape[-2]), haar_low_matrix(xp.shape[-1])

    def low(t):
        return lh.T @ (lh @ t @ lw.T) @ lw

    low0 = low(xp)
    xp = xp.clone().requires_grad_(True)
    opt = torch.optim.Adam([xp], lr=lr)
    smooth = torch.nn.SmoothL1Loss(reduction="sum")
    for _ in range(iters):
        cost = msu_loss(metric, xp) + lam * smooth(low(xp), low0)
        opt.zero_grad()
        cost.backward()
        xp.grad = torch.nan_to_num(xp.grad)
        opt.step()
        xp.data.clamp_(0.0, 1.0)
    return xp.detach()[..., :h, :w]


def msu_madc(x, metric, lr=0.001, iters=8, eps=10 / 255, pull=0.0005):
    """MSU's MAD competition: sign step on ∇ projected orthogonal to ∇RMSE (from the second
    iteration), then sign steps down ∇RMSE while RMSE > ε, clamping to [0, 1]."""
    x0 = x.clone()
    x = x.clone().requires_grad_(True)

    def rmse(t):
        return ((t - x0) ** 2).mean() ** 0.5

    for i in range(iters):
        msu_loss(metric, x).backward()
        g2 = x.grad.clone()
        x.grad = None
        if i < 1:
            pg = g2
        else:
            rmse(x).backward()
            g1 = x.grad.clone()
            x.grad = None
            pg = g2 - (g1 * g2).sum() / (g1 * g1).sum() * g1
        x.data -= lr * torch.sign(pg)
        cur = rmse(x)
        while cur > eps:
            cur.backward()
            x.data -= pull * torch.sign(x.grad)
            x.grad = None
            x.data.clamp_(0.0, 1.0)
            cur = rmse(x)
        x.data.clamp_(0.0, 1.0)
    return x.detach()


def msu_uap_apply(x: torch.Tensor, uap: np.ndarray, amplitude: float = 0.2) -> torch.Tensor:
    """MSU's evaluation of a universal perturbation (H×W×3 numpy) on one image: tiled over
    the image from the top-left with ``np.tile``, scaled by the amplitude, clipped to [0, 1]."""
    im = x[0].permute(1, 2, 0).numpy()
    h, w = im.shape[:2]
    tiled = np.tile(uap, (h // uap.shape[0] + 1, w // uap.shape[1] + 1, 1))[:h, :w, :]
    return torch.from_numpy(np.clip(im + tiled * amplitude, 0, 1)).permute(2, 0, 1)[None]


#: universal attacks: (attack, preset) → reference taking (image, perturbation H×W×3)
UNIVERSAL_REFERENCES = {("uap", "msu-literal"): msu_uap_apply}

#: (attack, preset) → its reference (called per image)
REFERENCES: dict[tuple[str, str], Reference] = {
    ("ifgsm", "msu-default"): msu_ifgsm,
    ("fgsm", "msu-default"): msu_fgsm,
    ("mifgsm", "msu-literal"): msu_mifgsm,
    ("amifgsm", "msu-literal"): msu_amifgsm,
    ("korhonen", "msu-literal"): msu_korhonen,
    ("ssah", "msu-literal"): msu_ssah,
    ("madc", "msu-default"): msu_madc,
}

