"""stAdv: spatially transformed adversarial examples (Xiao, Zhu, Li, He, Liu, Song, ICLR 2018).

No pixel value is changed directly: the attack optimises a flow field f (per pixel a
displacement (Δrow, Δcolumn) in pixels) and the output samples the input at
``p + f(p)`` by bilinear interpolation (:func:`warp`), so every output pixel is a convex
combination of the four input pixels around where it samples. The loss is the MSU loss
plus τ times the flow's total variation

    L_flow(f) = Σ_p Σ_{q ∈ N(p)} √(‖Δu_p − Δu_q‖² + ‖Δv_p − Δv_q‖² + ε),

N(p) the four diagonal neighbours (zero flow outside the image). By default τ weighs the
*mean* over the 4·H·W pixel pairs (``tv_reduce="mean"``: the paper's sum divided by
4·H·W), so one τ fits every image size and the MSU loss's 1/range scale; ``"sum"`` is
the paper's literal sum.

Optimiser: Adam on the flow (``optimizer="adam"``, per flow element, so every image is
independent), one metric forward+backward per step. The paper uses L-BFGS
(``optimizer="lbfgs"``, one optimiser per image); on the MSU loss, whose gradient is tiny
(scores divided by the range), PyTorch's L-BFGS without a line search takes steps of a
few 1e-6 px and leaves the score unchanged (measured on BRISQUE and MetaIQA), hence the
default.

Constrains: the flow (smoothness through τ; optionally ``max_flow`` pixels per
component); the output is a warp of the input (values stay within the range of the
input pixels it interpolates), image in [0, 1].

Paper defaults: τ = 0.05. Ours: τ = 0.05 on the mean flow variation, Adam at 0.01 px per
step, 10 iterations.

Differences of MSU's published code (``adversarial-defenses-for-iqa``,
``metrics/methods/stadv/run.py``), reproduced by the ``msu-literal`` preset:

* 3 L-BFGS steps at learning rate 2.5, no line search (``optimizer="lbfgs", lr=2.5, iters=3``);
* the flow penalty sums the squared differences (no square root: ``tv="squared"``) and
  over all pixels (``tv_reduce="sum"``) with weight 1e-5 (``tau=1e-5``);
* the adversarial term is a rank loss ``s_o/(s + s_o)`` with ``s_o = 1.5·range`` (for
  lower-is-better metrics ``s = range − score`` and ``s_o = 0.1·range``), not the MSU
  loss (``loss="rank"``), with weight 50 (``adv_weight=50``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, IterateTracker
from engine.metrics.base import Metric, attack_loss, check_image_batch
from engine.spec.params import param


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at ``p + flow(p)`` by bilinear interpolation (coordinates clamped to
    the image); zero flow returns ``x`` exactly.

    Args:
        x: :math:`(B, C, H, W)`.
        flow: :math:`(B, 2, H, W)`, (Δrow, Δcolumn) in pixels.

    Returns:
        :math:`(B, C, H, W)`, each value a convex combination of 4 neighbouring input pixels.
    """
    b, c, h, w = x.shape
    ys = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    gy = (ys + flow[:, 0]).clamp(0, h - 1)
    gx = (xs + flow[:, 1]).clamp(0, w - 1)
    y0 = gy.detach().floor().clamp(max=max(h - 2, 0))
    x0 = gx.detach().floor().clamp(max=max(w - 2, 0))
    wy, wx = (gy - y0).unsqueeze(1), (gx - x0).unsqueeze(1)
    y0l, x0l = y0.long(), x0.long()
    y1l, x1l = (y0l + 1).clamp(max=h - 1), (x0l + 1).clamp(max=w - 1)
    flat = x.reshape(b, c, h * w)

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat.gather(2, (yy * w + xx).view(b, 1, h * w).expand(b, c, h * w)).view(b, c, h, w)

    return ((1 - wy) * (1 - wx) * at(y0l, x0l) + wy * (1 - wx) * at(y1l, x0l)
            + (1 - wy) * wx * at(y0l, x1l) + wy * wx * at(y1l, x1l))


def flow_tv(flow: torch.Tensor, squared: bool = False, eps: float = 1e-8) -> torch.Tensor:
    """Per image, the flow's total variation over the four diagonal neighbours (zero
    padding), :math:`(B,)`: ``Σ √(Δ² + ε)`` (paper) or ``Σ (Δ² + ε)`` (``squared``)."""
    padded = F.pad(flow, (1, 1, 1, 1))
    total = flow.new_zeros(flow.shape[0])
    for dy, dx in ((2, 2), (2, 0), (0, 2), (0, 0)):
        q = padded[:, :, dy:dy + flow.shape[2], dx:dx + flow.shape[3]]
        d2 = (flow - q).pow(2).sum(dim=1) + eps
        total = total + (d2 if squared else d2.sqrt()).flatten(1).sum(dim=1)
    return total


@dataclass
class StAdvParams(AttackParams):
    tau: float = param(0.05, min=0.0, max=1e6, help="weight τ of the flow's total-variation penalty")
    lr: float = param(0.01, min=1e-6, max=1000.0, help="learning rate of the flow optimiser (pixels for Adam)")
    iters: int = param(10, min=1, max=10000, help="optimiser steps (one metric forward+backward each)")
    optimizer: str = param("adam", choices=("adam", "lbfgs"), help="flow optimiser (the paper's is L-BFGS)")
    tv_reduce: str = param("mean", choices=("mean", "sum"),
                           help="τ weighs the mean (size-free) or the paper's sum of the flow variation")
    max_flow: float = param(0.0, min=0.0, max=10000.0,
                            help="clip each flow component to ±this many pixels; 0 = unbounded (paper)")
    tv: str = param("sqrt", choices=("sqrt", "squared"), help="flow penalty: paper's √ or MSU's squared sum")
    loss: str = param("msu", choices=("msu", "rank"), help="adversarial term: MSU loss or MSU stAdv's rank loss")
    adv_weight: float = param(1.0, min=0.0, max=1e6, help="weight of the adversarial term")


@ATTACKS.register("stadv")
class StAdv(Attack):
    """Optimised flow-field warp.

    Example:
        >>> out = StAdv(tau=0.05, iters=10)(x, metric)
    """

    batchable = False  # L-BFGS couples the images' flows through one line search

    Params = StAdvParams
    strength_param = "lr"
    presets = {"paper": {},
               "msu-literal": {"optimizer": "lbfgs", "lr": 2.5, "iters": 3, "tv": "squared",
                               "tv_reduce": "sum", "tau": 1e-5, "loss": "rank", "adv_weight": 50.0},
               "smooth": {"tau": 0.5}, "bounded-1px": {"max_flow": 1.0}}
    literal_presets = {"msu-literal": "adversarial-defenses-for-iqa/metrics/methods/stadv/run.py"}

    def _adv(self, metric: Metric, scores: torch.Tensor) -> torch.Tensor:
        if self.params.loss == "msu":
            return attack_loss(metric, scores)
        r = metric.range
        s, other = (r - scores, 0.1 * r) if metric.lower_better else (scores, 1.5 * r)
        return other / (s + other)

    def _flows(self, flows: list[torch.Tensor]) -> torch.Tensor:
        f = torch.stack(flows)
        m = self.params.max_flow
        return f.clamp(-m, m) if m > 0 else f

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        check_image_batch(x)
        p = self.params
        x0 = x.detach()
        b, _, h, w = x0.shape
        flows = [torch.zeros(2, h, w, device=x0.device, dtype=x0.dtype, requires_grad=True) for _ in range(b)]
        if p.optimizer == "lbfgs":
            opts = [torch.optim.LBFGS([f], lr=p.lr, max_iter=1) for f in flows]
        else:
            opts = [torch.optim.Adam(flows, lr=p.lr)]
        pairs = 1.0 if p.tv_reduce == "sum" else 4.0 * h * w
        tracker = IterateTracker(metric, x0)
        for i in range(p.iters):
            with torch.enable_grad():
                f = self._flows(flows)
                xi = warp(x0, f)
                scores = metric.score(xi, grad=True)
                adv = self._adv(metric, scores)
                losses = p.adv_weight * adv + p.tau * flow_tv(f, squared=p.tv == "squared") / pairs
                grads = torch.autograd.grad(losses.sum(), flows)
            yield tracker.record(i, xi.detach(), scores.detach(), attack_loss(metric, scores.detach()))
            if p.optimizer == "adam":
                for flow, g in zip(flows, grads):
                    flow.grad = g
                opts[0].step()
                continue
            for k, opt in enumerate(opts):
                value, g = losses[k].detach(), grads[k]

                def closure(value=value, g=g, param=flows[k]):
                    param.grad = g
                    return value

                opt.step(closure)
        with torch.no_grad():
            x_adv = warp(x0, self._flows(flows))
        yield tracker.record(p.iters, x_adv, metric.score(x_adv))
        return tracker.outcome(x_adv, p.iters, p.keep_best)
