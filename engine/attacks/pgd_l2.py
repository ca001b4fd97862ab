"""PGD in an L2 ball (Madry et al., ICLR 2018) on the MSU loss.

δ₀ is drawn uniformly in the L2 ball of radius r (a Gaussian direction, length
r·U^(1/d), from the caller's generator on the CPU, so every device gets the same start);
then ``iters`` steps ``δ ← Π_r(δ − α·∇/‖∇‖₂)`` with Π_r the projection onto the ball
(``δ·min(1, r/‖δ‖₂)``), per image. The gradient is taken at the clamped iterate
(straight-through, as the L∞ attacks here).

Constrains: ‖x_adv − x‖₂ ≤ r per image (norm over all 3·H·W values in [0, 1] units),
image in [0, 1] (clamping can only shrink the norm).

Defaults: r = 0.5, α = 2.5·r/iters (Madry et al.'s rule), 10 iterations. MSU publishes
no L2 PGD (the certified defences of the Guardians benchmark are stated for L2 radii),
so there is no ``msu-literal`` preset.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, IterateTracker, loss_and_grad, sweep
from engine.metrics.base import Metric, check_image_batch
from engine.spec.params import param

L2_RADII = [0.25, 0.5, 1.0, 2.0]


@dataclass
class PGDL2Params(AttackParams):
    radius: float = param(0.5, min=0.0, max=1000.0, help="L2 radius of the perturbation ball (per image)")
    alpha: float = param(0.0, min=0.0, max=1000.0, help="L2 length of each step; 0 = 2.5·radius/iters")
    iters: int = param(10, min=1, max=10000, help="number of iterations")
    random_start: bool = param(True, help="start from a uniform draw in the ball (else from δ = 0)")


def l2_project(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """Per image: ``δ·min(1, r/‖δ‖₂)`` (in place)."""
    norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta.mul_((radius / norm).clamp(max=1.0).view(-1, 1, 1, 1))


@ATTACKS.register("pgd-l2")
class PGDL2(Attack):
    """Projected gradient descent in an L2 ball.

    Example:
        >>> out = PGDL2(radius=1.0, iters=20)(x, metric)
    """

    batchable = False  # the random start draws from one generator for the whole batch

    Params = PGDL2Params
    strength_param = "radius"
    presets = {"paper": {}, **sweep("radius", L2_RADII)}

    def init_delta(self, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        r = self.params.radius
        if not self.params.random_start or r == 0:
            return torch.zeros_like(x0)
        d = torch.randn(x0.shape, generator=generator, dtype=torch.float32)
        u = torch.rand((x0.shape[0],), generator=generator, dtype=torch.float64)
        length = r * u.pow(1.0 / d[0].numel()).float()
        d = d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1) * length.view(-1, 1, 1, 1)
        return d.to(device=x0.device, dtype=x0.dtype)

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        check_image_batch(x)
        p = self.params
        x0 = x.detach()
        alpha = p.alpha or 2.5 * p.radius / p.iters
        delta = self.init_delta(x0, generator)
        tracker = IterateTracker(metric, x0)
        for i in range(p.iters):
            xi = (x0 + delta).clamp(0.0, 1.0)
            scores, loss, grad = loss_and_grad(metric, xi)
            yield tracker.record(i, xi, scores, loss)
            gnorm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            l2_project(delta.sub_(alpha * grad / gnorm), p.radius)
        x_adv = (x0 + delta).clamp(0.0, 1.0)
        yield tracker.record(p.iters, x_adv, metric.score(x_adv))
        return tracker.outcome(x_adv, p.iters, p.keep_best)
