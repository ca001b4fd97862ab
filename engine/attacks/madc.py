"""MAD competition attack (Wang & Simoncelli, 2008), as in MSU's benchmark.

Z. Wang and E. P. Simoncelli, "Maximum differentiation (MAD) competition: A methodology
for comparing computational models of perceptual quantities", Journal of Vision 2008.

Each iteration takes a sign step on the MSU-loss gradient projected orthogonal to the
gradient of RMSE(x, x₀) (so, to first order, the step does not change the RMSE), then,
while RMSE(x, x₀) > ``rmse_max``, pulls the image back towards x₀ with small sign steps
along −∇RMSE. MSU defaults: 8 iterations, step 0.001, pull-back step 0.0005, RMSE
10/255.

Constrains: RMSE(x, x₀) ≤ ``rmse_max`` (the image stays on or inside the RMSE shell) and
image in [0, 1]. With the defaults (8 × 0.001) the RMSE never exceeds 0.008 < 10/255, so
the pull-back only acts with larger steps or more iterations.

The defaults are MSU's code (``metrics/methods/madc/run.py`` of adversarial-defenses-for-iqa);
``msu-default`` is checked against an independent loop in the tests. One difference: MSU's
projection and RMSE are taken over the whole batch (it runs one image per call); ours are
per image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, IterateTracker, loss_and_grad
from engine.metrics.base import Metric, check_image_batch
from engine.spec.params import param

RMSE_LEVELS = [2 / 255, 4 / 255, 8 / 255, 16 / 255]


def rmse(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Per-image root-mean-square difference, :math:`(B,)`."""
    return (x - x0).flatten(1).pow(2).mean(dim=1).sqrt()


def project_orthogonal(g: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Remove from each image's ``g`` its component along ∇RMSE.

    ∇ₓRMSE(x, x₀) = (x − x₀)/(N·RMSE) is parallel to ``d = x − x₀``, so projecting out
    ``d`` is the same and needs no autograd; where ``d = 0`` (the first iteration) RMSE
    has no gradient and ``g`` is returned unchanged.
    """
    gf, df = g.flatten(1), d.flatten(1)
    dd = (df * df).sum(dim=1)
    coef = torch.where(dd > 0, (gf * df).sum(dim=1) / dd.clamp_min(1e-30), torch.zeros_like(dd))
    return g - coef.view(-1, 1, 1, 1) * d


def pull_back(x: torch.Tensor, x0: torch.Tensor, rmse_max: float, step: float) -> torch.Tensor:
    """While an image's RMSE to x₀ exceeds ``rmse_max``, step ``−step·sign(∇RMSE)``.

    Terminates: each step shrinks every |x − x₀| ≥ step by ``step`` and leaves the others
    below ``step``, so the RMSE falls below ``step`` (< rmse_max) after at most 1/step
    rounds; a cap guards against a pathological ``rmse_max ≤ step``.
    """
    for _ in range(math.ceil(1.0 / step) + 2):
        over = rmse(x, x0) > rmse_max
        if not bool(over.any()):
            break
        moved = (x - step * torch.sign(x - x0)).clamp(0.0, 1.0)
        x = torch.where(over.view(-1, 1, 1, 1), moved, x)
    return x


@dataclass
class MADCParams(AttackParams):
    iters: int = param(8, min=1, max=10000, help="number of iterations")
    step: float = param(0.001, min=0.0, max=1.0, help="sign step on the projected metric gradient",
                        step=0.0005)
    rmse_max: float = param(10 / 255, min=0.0, max=1.0, help="RMSE shell radius around the original",
                            unit="×255", step=1 / 255)
    pullback_step: float = param(0.0005, min=1e-6, max=1.0,
                                 help="sign step towards the original while RMSE > rmse_max", step=0.0005)


@ATTACKS.register("madc")
class MADC(Attack):
    """MAD-competition attack: raise the metric at (nearly) constant RMSE.

    Example:
        >>> out = MADC()(x, metric)
    """

    Params = MADCParams
    strength_param = "rmse_max"
    presets = {"msu-default": {},
               **{f"rmse={round(r * 255)}/255": {"rmse_max": r, "step": r / 8} for r in RMSE_LEVELS}}
    literal_presets = {"msu-default": "adversarial-defenses-for-iqa/metrics/methods/madc/run.py"}

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        check_image_batch(x)
        x0 = x.detach()
        tracker = IterateTracker(metric, x0)
        xi = x0.clone()
        for i in range(p.iters):
            scores, loss, grad = loss_and_grad(metric, xi)
            yield tracker.record(i, xi, scores, loss)
            direction = project_orthogonal(grad, xi - x0)
            xi = (xi - p.step * direction.sign()).clamp(0.0, 1.0)
            xi = pull_back(xi, x0, p.rmse_max, p.pullback_step)
        yield tracker.record(p.iters, xi, metric.score(xi))
        return tracker.outcome(xi, p.iters, p.keep_best)
