"""SMA: an attack on a metric's **correlation** with subjective scores over a set of images
(SROCC-MSE-Attack; Yang, Liu, Li, Zhong, Jiang, "Beyond Score Changes: Adversarial Attack
on No-Reference Image Quality Assessment from Two Perspectives", arXiv 2404.13277, 2024),
re-derived from the paper's description.

Two stages, on the whole set at once (N images with MOS, higher MOS = better):

1. **Targets.** In "goodness" units g = sign·M (higher is better), each image may move
   within ``reach`` of its clean goodness: t_i = g_i + reach·tanh(z_i) (the paper's
   interior constraint keeps targets reachable). Adam on z minimises
   ``soft-SROCC(t, MOS) − λ·mean((t − g)²)/reach²``: the ranking correlation falls and the
   scores move. Soft ranks r_i = ½ + Σ_j sigmoid((t_i − t_j)/τ) make SROCC differentiable
   (Pearson of the soft ranks with MOS's ranks).
2. **Images.** Each image takes sign-gradient steps on (g(x_i) − t_i)² within the L∞ ball
   of ε (clamped to [0, 1]); the iterate closest to its target is kept.

Constrains: L∞ ≤ ε per image, images in [0, 1]. Not a per-image attack of the registry
(its objective couples the images through the correlation): :func:`sma_attack` runs it on
a batch with MOS, :func:`sma_rows` gives per-image rows and the set's correlations
before and after. SROCC/PLCC are reported for g (so a metric that agrees with MOS has
positive values, whatever its direction) against MOS.

Not reproduced from the paper: its perceptual constraint and step schedule (we use the
lab's L∞ ε and I-FGSM-style steps), and its estimate of each image's reachable range (a
fixed ``reach`` in metric units here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from engine.metrics.base import Metric, check_image_batch


@dataclass
class SMAResult:
    """What :func:`sma_attack` returns (per image :math:`(N,)` unless said).

    Attributes:
        images: the attacked set :math:`(N, 3, H, W)`.
        clean, attacked: the metric's raw scores before and after.
        targets: stage one's targets, raw metric units.
        srocc_before, srocc_after, plcc_before, plcc_after: correlations of sign·score with MOS.
        linf, ssim: each attacked image against its clean one.
    """

    images: torch.Tensor
    clean: torch.Tensor
    attacked: torch.Tensor
    targets: torch.Tensor
    srocc_before: float
    srocc_after: float
    plcc_before: float
    plcc_after: float
    linf: torch.Tensor
    ssim: torch.Tensor


def soft_rank(t: torch.Tensor, tau: float) -> torch.Tensor:
    """Differentiable ranks of ``t`` :math:`(N,)`: ½ + Σ_j sigmoid((t_i − t_j)/τ) (→ 1…N as τ → 0)."""
    return 0.5 + torch.sigmoid((t[:, None] - t[None, :]) / tau).sum(dim=1)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12)


def find_targets(good: torch.Tensor, mos: torch.Tensor, reach: float, lam: float = 0.1,
                 steps: int = 300, lr: float = 0.05, tau: float | None = None) -> torch.Tensor:
    """Stage one: target goodness values t :math:`(N,)`, each within ``reach`` of ``good``,
    minimising soft-SROCC(t, MOS) − λ·mean((t − g)²)/reach².

    Args:
        good: clean goodness sign·M :math:`(N,)`.
        mos: subjective scores :math:`(N,)`, higher = better.
        reach: how far a target may be from its clean goodness (metric units).
        lam: weight of the score-change term.
        steps, lr: Adam on the unconstrained z.
        tau: soft-rank temperature (default: reach / 10).
    """
    good = good.detach().double()
    mos_rank = torch.argsort(torch.argsort(mos.double())).double() + 1
    tau = tau if tau is not None else reach / 10
    z = torch.zeros_like(good, requires_grad=True)
    # start every target a little against MOS's order, so the soft-rank gradient is not ~0
    with torch.no_grad():
        z -= 0.1 * (mos_rank - mos_rank.mean()) / mos_rank.std().clamp_min(1e-12)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        t = good + reach * torch.tanh(z)
        loss = pearson(soft_rank(t, tau), mos_rank) - lam * ((t - good) ** 2).mean() / reach ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (good + reach * torch.tanh(z)).float()


def sma_attack(x: torch.Tensor, mos: Sequence[float] | torch.Tensor, metric: Metric, *, eps: float = 8 / 255,
               reach: float | None = None, iters: int = 20, alpha: float = 1 / 255, lam: float = 0.1,
               target_steps: int = 300, chunk: int = 16) -> SMAResult:
    """Attack the correlation of ``metric`` with ``mos`` over the set ``x``.

    Args:
        x: the set :math:`(N, 3, H, W)` in [0, 1], N ≥ 3.
        mos: N subjective scores (higher = better).
        metric: the attacked metric.
        eps: L∞ bound per image.
        reach: how far a target may be from the clean score (default: 0.2 × the metric's range).
        iters, alpha: stage two's sign steps.
        lam: stage one's score-change weight.
        target_steps: stage one's Adam steps.
        chunk: most images per metric call.

    Raises:
        ValueError: fewer than 3 images or a MOS count that does not match.
    """
    from engine.evaluation.correlation import plcc, srocc
    from engine.evaluation.pairs import ssim

    check_image_batch(x)
    mos_t = torch.as_tensor(mos, dtype=torch.float64).flatten()
    n = x.shape[0]
    if n < 3 or mos_t.numel() != n:
        raise ValueError(f"sma: needs at least 3 images with one MOS each, got {n} images and {mos_t.numel()} MOS")
    reach = float(reach if reach is not None else 0.2 * metric.range)
    x0 = x.detach()

    def scores(imgs: torch.Tensor, grad: bool = False) -> torch.Tensor:
        return torch.cat([metric.score(imgs[i:i + chunk], grad=grad) for i in range(0, n, chunk)])

    with torch.no_grad():
        clean = scores(x0)
    targets_good = find_targets(metric.sign * clean.cpu(), mos_t, reach, lam, target_steps).to(clean.device)
    cur, best = x0.clone(), x0.clone()
    best_err = (metric.sign * clean - targets_good).abs()
    for _ in range(iters):
        xi = cur.detach().requires_grad_(True)
        s = scores(xi, grad=True)
        err = metric.sign * s - targets_good
        (grad,) = torch.autograd.grad((err ** 2).sum(), xi)
        with torch.no_grad():
            closer = err.abs() < best_err
            best[closer] = cur[closer]
            best_err = torch.where(closer, err.abs(), best_err)
            cur = torch.minimum(torch.maximum(cur - alpha * grad.sign(), x0 - eps), x0 + eps).clamp(0.0, 1.0)
    with torch.no_grad():
        last = scores(cur)
        closer = (metric.sign * last - targets_good).abs() < best_err
        best[closer] = cur[closer]
        attacked = scores(best)
    g0, g1 = (metric.sign * clean).tolist(), (metric.sign * attacked).tolist()
    m = mos_t.tolist()
    return SMAResult(best, clean.cpu(), attacked.cpu(), (metric.sign * targets_good).cpu(),
                     srocc(g0, m), srocc(g1, m), plcc(g0, m), plcc(g1, m),
                     (best - x0).flatten(1).abs().amax(dim=1).cpu(), ssim(best, x0).cpu())


def sma_rows(result: SMAResult, names: Sequence[str], mos: Sequence[float]) -> list[dict[str, Any]]:
    """One row per image (name, MOS, clean/attacked/target score, L∞, SSIM) with the set's
    correlations before and after repeated on every row."""
    set_cols = {"srocc_before": result.srocc_before, "srocc_after": result.srocc_after,
                "plcc_before": result.plcc_before, "plcc_after": result.plcc_after}
    return [{"image_name": name, "mos": float(mos[i]), "clear": float(result.clean[i]),
             "attacked": float(result.attacked[i]), "target": float(result.targets[i]),
             "l_inf": float(result.linf[i]), "ssim": float(result.ssim[i]), **set_cols}
            for i, name in enumerate(names)]
