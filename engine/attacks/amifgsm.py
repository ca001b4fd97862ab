"""AMI-FGSM as in MSU's benchmark: momentum, step ε/iters, updates the image directly.

g ← ν·g + ∇/mean|∇|; x ← clip_{x₀,ε}(x − (ε/iters)·sign(g)) clamped to [0, 1].
Constrains: L∞ ≤ ε. MSU defaults: ε = 10/255, 10 iterations, ν = 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, IterateTracker, loss_and_grad
from engine.attacks.sign_gradient import l1_normalised, linf_presets, sign_into
from engine.metrics.base import Metric
from engine.params import param


@dataclass
class AMIFGSMParams(AttackParams):
    eps: float = param(10 / 255, min=0.0, max=1.0, help="L∞ budget", unit="×255", step=1 / 255)
    iters: int = param(10, min=1, max=10000, help="number of iterations (step = ε/iters)")
    momentum: float = param(1.0, min=0.0, max=10.0, help="momentum decay ν")


@ATTACKS.register("amifgsm")
class AMIFGSM(Attack):
    Params = AMIFGSMParams
    strength_param = "eps"
    presets = {"msu-default": {}, **linf_presets()}

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        x0 = x.detach()
        alpha = p.eps / p.iters
        tracker = IterateTracker(metric, x0)
        xi = x0.clone()
        g = torch.zeros_like(x0)
        # the ε-ball ∩ [0, 1], once (same values as clipping to the ball, then to [0, 1])
        lo, hi = (x0 - p.eps).clamp_min(0.0), (x0 + p.eps).clamp_max(1.0)
        for i in range(p.iters):
            scores, loss, grad = loss_and_grad(metric, xi)
            yield tracker.record(i, xi, scores, loss)
            g.mul_(p.momentum).add_(l1_normalised(grad))
            xi.add_(sign_into(g, grad), alpha=-alpha).clamp_(min=lo, max=hi)
        yield tracker.record(p.iters, xi, metric.score(xi))
        return tracker.outcome(xi, p.iters, p.keep_best)
