"""Shared loop of the sign-gradient attacks (FGSM, I-FGSM, MI-FGSM, PGD).

x_k = clamp(x₀ + δ_k, 0, 1); δ_{k+1} = clip_ε(δ_k − α·sign(direction(∇loss))). The gradient
is taken at the clamped iterate and applied to δ unchanged, i.e. the clamp is
straight-through as in MSU's reference code (``res.data.clamp_``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks.base import Attack, AttackParams, AttackRun, Generators, IterateTracker, loss_and_grad
from engine.metrics.base import Metric
from engine.spec.params import param

LINF_LEVELS = [2 / 255, 4 / 255, 8 / 255, 16 / 255]


def linf_presets(**fixed_by_eps) -> dict[str, dict]:
    """The L∞ levels 2, 4, 8, 16/255 used in later work, as presets ``eps=N/255``."""
    return {f"eps={round(e * 255)}/255": {"eps": e, **fixed_by_eps} for e in LINF_LEVELS}


@dataclass
class SignParams(AttackParams):
    eps: float = param(10 / 255, min=0.0, max=1.0, help="L∞ budget of the perturbation", unit="×255", step=1 / 255)
    alpha: float = param(1 / 255, min=0.0, max=1.0, help="step size of each sign step", unit="×255", step=0.25 / 255)
    iters: int = param(10, min=1, max=10000, help="number of iterations")


class SignGradientAttack(Attack):
    """Template for sign-gradient attacks; subclasses override the hooks."""

    Params = SignParams
    strength_param = "eps"

    def init_delta(self, x0: torch.Tensor, generator: Generators) -> torch.Tensor:
        return torch.zeros_like(x0)

    def direction(self, grad: torch.Tensor, state: dict) -> torch.Tensor:
        return grad

    def step_size(self) -> float:
        return self.params.alpha

    def num_iters(self) -> int:
        return self.params.iters

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: Generators = None) -> AttackRun:
        p = self.params
        x0 = x.detach()
        delta = self.init_delta(x0, generator)
        tracker = IterateTracker(metric, x0)
        state: dict = {}
        alpha = self.step_size()
        n = self.num_iters()
        xi = torch.empty_like(x0)  # reused: a fresh image-sized buffer per step costs on the CPU
        for i in range(n):
            torch.add(x0, delta, out=xi).clamp_(0.0, 1.0)
            scores, loss, grad = loss_and_grad(metric, xi)
            yield tracker.record(i, xi, scores, loss)
            delta.add_(sign_into(self.direction(grad, state), grad), alpha=-alpha).clamp_(-p.eps, p.eps)
        x_adv = (x0 + delta).clamp(0.0, 1.0)
        yield tracker.record(n, x_adv, metric.score(x_adv))
        return tracker.outcome(x_adv, n, p.keep_best)


def l1_normalised(grad: torch.Tensor) -> torch.Tensor:
    """Per-image gradient divided by its mean absolute value (MI-FGSM's normalisation)."""
    n = grad[0].numel()
    mean_abs = torch.linalg.vector_norm(grad, ord=1, dim=(1, 2, 3), keepdim=True) / n  # no |grad| temp
    return grad / mean_abs.clamp_min(1e-12)


def sign_into(direction: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``sign(direction)``, written over ``grad`` (spent by then) to spare an image-sized
    allocation per step; autograd's gradient is ours to overwrite unless it is an
    expanded view."""
    return torch.sign(direction, out=grad) if grad.is_contiguous() else torch.sign(direction)
