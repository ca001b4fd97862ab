"""Shared loop of the attacks that run Adam on the pixels (Korhonen, Zhang, SSAH).

The optimised variable is an additive perturbation δ (init 0) with
``x = x₀ + s ⊙ δ``; Adam on δ with ``s = 1`` is exactly Adam on the pixels (Adam is
shift-invariant). After every step the image is projected back to [0, 1] and, when
``eps > 0``, to the L∞ ball of radius ε around x₀ (as MSU does with ``.data.clamp_``).
"""
from __future__ import annotations

from typing import Callable

import torch

from engine.attacks.base import AttackRun, IterateTracker, loss_and_grad
from engine.metrics.base import Metric, attack_loss

#: an extra per-image loss term ``f(x) -> (B,)`` added to the MSU loss (e.g. a distance to x₀)
ExtraLoss = Callable[[torch.Tensor], torch.Tensor]


def linf_box(x0: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel lower/upper bounds: [0, 1] intersected with the ε-ball when ``eps > 0``."""
    if eps > 0:
        return (x0 - eps).clamp_min(0.0), (x0 + eps).clamp_max(1.0)
    return torch.zeros_like(x0), torch.ones_like(x0)


def adam_pixel_attack(
    x0: torch.Tensor,
    metric: Metric,
    *,
    lr: float,
    iters: int,
    keep_best: bool,
    eps: float = 0.0,
    extra_loss: ExtraLoss | None = None,
    scale: torch.Tensor | None = None,
    grad_weight: torch.Tensor | None = None,
    zero_nan_grad: bool = False,
    crop: tuple[int, int] | None = None,
) -> AttackRun:
    """Minimise ``1 − sign·M(x)/range (+ extra_loss(x))`` with Adam.

    Args:
        x0: the original batch :math:`(B, 3, H, W)` in [0, 1].
        metric: the metric to attack.
        lr: Adam learning rate.
        iters: number of Adam steps (one metric forward+backward each).
        keep_best: return the best-scoring iterate instead of the last.
        eps: L∞ budget; 0 means unbounded (only the [0, 1] clamp).
        extra_loss: per-image term added to the loss, evaluated with gradients.
        scale: ``s`` in ``x = x₀ + s ⊙ δ`` (broadcastable to x0); default 1.
        grad_weight: the gradient fed to Adam is ``grad_weight ⊙ ∇ₓloss`` (default ``scale``,
            i.e. the chain rule; pass a different tensor to mask the gradient only).
        zero_nan_grad: replace NaN in ∇ₓloss by 0 (and ±inf by the largest floats) before
            weighting it, as MSU's code does with ``torch.nan_to_num``.
        crop: ``(H, W)``: x0 is a padded image; the loop optimises all of it (the metric sees
            the padded image) but the step records and the outcome are of its top-left H×W.

    Yields the step record of every iterate (0 = clean) and returns the outcome.
    """
    x0 = x0.detach()
    lo, hi = linf_box(x0, eps)

    def shown(t: torch.Tensor) -> torch.Tensor:
        return t if crop is None else t[..., :crop[0], :crop[1]]

    tracker = IterateTracker(metric, shown(x0))
    w = None if grad_weight is None else grad_weight.detach().expand_as(x0)
    if scale is None:
        # Adam on the pixels themselves (MSU), projected in place
        x = x0.clone().requires_grad_(True)
        opt = make_adam(x, lr)
        for i in range(iters):
            scores, loss, gx = loss_and_grad(metric, x, extra_loss)
            yield tracker.record(i, shown(x), scores, loss)
            if zero_nan_grad:
                gx = torch.nan_to_num_(gx)
            x.grad = same_layout(gx if w is None else w * gx, x)
            opt.step()
            with torch.no_grad():
                x.clamp_(min=lo, max=hi)
        x = x.detach()
    else:
        if crop is not None or zero_nan_grad:
            raise ValueError("adam_pixel_attack: crop and zero_nan_grad need scale=None")
        s = scale.detach().expand_as(x0)
        w = s if w is None else w
        frozen = s <= 0
        safe_s = torch.where(frozen, torch.ones_like(s), s)
        delta = torch.zeros_like(x0, requires_grad=True)
        opt = make_adam(delta, lr)
        x = x0.clone()
        g_buf, d_buf = torch.empty_like(x0), torch.empty_like(x0)
        for i in range(iters):
            scores, loss, gx = loss_and_grad(metric, x, extra_loss)
            yield tracker.record(i, x, scores, loss)
            delta.grad = torch.mul(w, gx, out=g_buf)
            opt.step()
            with torch.no_grad():
                torch.addcmul(x0, s, delta, out=x).clamp_(min=lo, max=hi)
                # keep δ consistent with the projected image (no drift outside the box)
                delta.copy_(torch.sub(x, x0, out=d_buf).div_(safe_s).masked_fill_(frozen, 0.0))
    with torch.no_grad():
        scores = metric.score(x)
        loss = attack_loss(metric, scores)
        if extra_loss is not None:
            loss = loss + extra_loss(x)
    yield tracker.record(iters, shown(x), scores, loss)
    return tracker.outcome(shown(x), iters, keep_best)


def same_layout(grad: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """``grad`` in ``param``'s memory layout. The fused Adam kernel pairs gradient and
    parameter elements by memory order (pytorch/pytorch#106951; torch 2.14 on the CPU gives
    no error), so a channels-last gradient (BRISQUE's, for instance) on a contiguous image
    would update the wrong pixels."""
    if grad.stride() == param.stride():
        return grad
    return torch.empty_like(param).copy_(grad)


def make_adam(param: torch.Tensor, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel where available (several times faster per step on CPU
    and CUDA; deterministic), else the default implementation."""
    try:
        return torch.optim.Adam([param], lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam([param], lr=lr)
