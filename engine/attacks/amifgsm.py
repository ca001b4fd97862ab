"""AMI-FGSM as in MSU's benchmark: momentum, step ε/iters, updates the image directly.

g ← ν·g + ∇/mean|∇|; x ← clip_{x₀,ε}(x − (ε/iters)·sign(g)) clamped to [0, 1].
Constrains: L∞ ≤ ε. Defaults: ε = 10/255, 10 iterations, ν = 1, the gradient normalised
as in MI-FGSM (Dong et al., 2018), which this attack adapts.

Differences from MSU's code (``methods/amifgsm/run.py`` of MSU_Metrics_Robustness_Benchmark),
reproduced by the preset ``msu-literal`` (``normalise=False``):

* the momentum adds the raw gradient, g ← ∇ + ν·g (no division by mean|∇|);
* the image is only clamped to [0, 1] after each step, with no projection on the ε-ball:
  that is the same image (``iters`` steps of ε/iters never leave the ball, and clamping
  to [0, 1] only moves a pixel towards x₀'s side), so we keep the projection;
* the benchmark's loss ignores ``lower_better``; we keep the metric's sign;
* MSU averages the scores of a batch (the sign of the step is the same per image).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, IterateTracker, loss_and_grad
from engine.attacks.mifgsm import momentum_direction
from engine.attacks.sign_gradient import linf_presets, sign_into
from engine.metrics.base import Metric
from engine.spec.params import param

MSU_AMIFGSM = "MSU_Metrics_Robustness_Benchmark/robustness_benchmark/methods/amifgsm/run.py"


@dataclass
class AMIFGSMParams(AttackParams):
    eps: float = param(10 / 255, min=0.0, max=1.0, help="L∞ budget", unit="×255", step=1 / 255)
    iters: int = param(10, min=1, max=10000, help="number of iterations (step = ε/iters)")
    momentum: float = param(1.0, min=0.0, max=10.0, help="momentum decay ν")
    normalise: bool = param(True, help="divide the gradient by its mean |∇| before adding it to the "
                                       "momentum (MI-FGSM); off = MSU's code")


@ATTACKS.register("amifgsm")
class AMIFGSM(Attack):
    """Momentum sign attack with step ε/iters on the image itself.

    Example:
        >>> out = AMIFGSM.from_preset("msu-literal")(x, metric)
    """

    Params = AMIFGSMParams
    strength_param = "eps"
    presets = {"paper": {}, "msu-literal": {"normalise": False}, **linf_presets()}
    literal_presets = {"msu-literal": MSU_AMIFGSM}

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        x0 = x.detach()
        alpha = p.eps / p.iters
        tracker = IterateTracker(metric, x0)
        xi = x0.clone()
        state: dict = {}
        # the ε-ball ∩ [0, 1], once (same values as clipping to the ball, then to [0, 1])
        lo, hi = (x0 - p.eps).clamp_min(0.0), (x0 + p.eps).clamp_max(1.0)
        for i in range(p.iters):
            scores, loss, grad = loss_and_grad(metric, xi)
            yield tracker.record(i, xi, scores, loss)
            g = momentum_direction(grad, state, p.momentum, p.normalise)
            xi.add_(sign_into(g, grad), alpha=-alpha).clamp_(min=lo, max=hi)
        yield tracker.record(p.iters, xi, metric.score(xi))
        return tracker.outcome(xi, p.iters, p.keep_best)
