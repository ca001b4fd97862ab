"""Gradient-estimation attack (``grad-est``), score-only, L∞.

Each iteration estimates the gradient of the metric from scores alone with antithetic
Gaussian differences (NES-style finite differences): ``n`` directions ``u`` of shape
3×T×T (T = 32), each tiled from the top-left over the image, are scored at
``clip(x ± σ·tile(u))``, and

    ĝ = 1/(2nσ) · Σ_k (M(x + σu_k) − M(x − σu_k)) · u_k     (a 3×T×T tile)

is normalised to unit L2 norm; the iterate moves by ``η · sign · tile(ĝ)`` (``sign`` = +1
when higher is better), is clamped to [0, 1] and to the L∞ box of ε around the original.
Whatever the draws, ĝ has a non-negative inner product with the tile-folded true gradient
(``Σ_k (u_k·∇)²``), so small steps are ascent steps.

Constrains: L∞ ≤ ε around the original, image in [0, 1]; at most ``queries`` metric
forwards per image. One iteration costs ``2n`` queries for the estimate plus one for the
new iterate's score (the step records, the best-iterate choice and the returned score are
real scores, never the estimate's); the last iteration uses fewer directions when the
budget left is short, and the search stops when fewer than three queries are left.

MSU's published code (``adversarial-defenses-for-iqa``, ``metrics/methods/grad-est/run.py``):
T = 32, n = 20, σ = 0.001, η = 0.1, 250 iterations, ε = 0.1, the metric's raw output (the
normalisation makes its scale irrelevant), the last iterate returned. These are the
defaults here except that the defaults return the best iterate seen (as the other
score-only attacks return the best image found); the ``msu-recipe`` preset returns the last
iterate (MSU's recipe; not ``msu-literal``: MSU draws from PyTorch's global generator, we
from the run's seeded one, so only the recipe is the same). Budget: MSU spends 250 × 40 =
10,000 queries and never scores its iterates; we also score each iterate, so 250 iterations
take 1 + 250 × 41 = 10,251 queries (the default budget). A zero estimate (a flat metric)
moves nothing, where MSU's code would divide by zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.attacks._black_box import BlackBoxAttack, BlackBoxParams, query, query_presets
from engine.attacks.base import ATTACKS, AttackRun, IterateTracker
from engine.attacks.sign_gradient import linf_presets
from engine.metrics.base import Metric, check_image_batch
from engine.spec.params import param

#: MSU's recipe: 250 iterations of 2·20 estimate queries + 1 iterate score, + the clean score
MSU_ITERS, MSU_DRAWS = 250, 20
MSU_QUERIES = 1 + MSU_ITERS * (2 * MSU_DRAWS + 1)


@dataclass
class GradEstParams(BlackBoxParams):
    queries: int = param(MSU_QUERIES, min=4, max=10_000_000,
                         help="query budget per image (the clean score, then 2·draws + 1 per iteration)")
    keep_best: bool = param(True, help="return the best-scoring iterate seen instead of the last")
    eps: float = param(0.1, min=0.0, max=1.0, help="L∞ budget of the perturbation", unit="×255", step=1 / 255)
    eta: float = param(0.1, min=0.0, max=100.0, help="L2 length of the step on one tile (the estimate is unit-norm)")
    sigma: float = param(0.001, min=1e-7, max=1.0, help="finite-difference radius of each antithetic pair")
    draws: int = param(MSU_DRAWS, min=1, max=10000, help="Gaussian directions per estimate (2 queries each)")
    tile: int = param(32, min=0, max=8192, help="side of the Gaussian direction tiled over the image; 0 = the image's size")


def tile_over(pert: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Repeat ``pert`` from the top-left until it covers h×w, then crop.

    Shape:
        pert :math:`(..., 3, T_h, T_w)` → :math:`(..., 3, h, w)`.
    """
    th, tw = pert.shape[-2:]
    reps = [1] * (pert.dim() - 2) + [math.ceil(h / th), math.ceil(w / tw)]
    return pert.repeat(*reps)[..., :h, :w]


@ATTACKS.register("grad-est")
class GradEst(BlackBoxAttack):
    """Score-only attack stepping along an antithetic Gaussian gradient estimate.

    Example:
        >>> out = GradEst(queries=1000)(x, metric)
    """

    Params = GradEstParams
    presets = {"paper": {}, "msu-recipe": {"keep_best": False}, **query_presets(), **linf_presets()}

    def _tile_shape(self, h: int, w: int) -> tuple[int, int]:
        t = self.params.tile
        return (h, w) if t == 0 else (t, t)

    def estimate(self, metric: Metric, x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """The normalised gradient estimate of ``sign·M`` at ``x`` from ``2n`` queries per image.

        Args:
            metric: the attacked metric.
            x: the iterate :math:`(B, 3, H, W)`.
            n: directions to draw (the generator gives :math:`(B, n, 3, T, T)` normals).
            generator: the run's CPU generator.

        Returns:
            :math:`(B, 3, T, T)`, unit L2 norm per image (zero where the estimate is zero).
        """
        p = self.params
        b, c, h, w = x.shape
        th, tw = self._tile_shape(h, w)
        u = torch.randn((b, n, c, th, tw), generator=generator, dtype=torch.float32)
        diffs = torch.empty(b, n, dtype=torch.float32)
        pairs = [(i, k) for i in range(b) for k in range(n)]
        per_call = max(1, p.chunk // 2)
        for s in range(0, len(pairs), per_call):
            ii = torch.tensor([i for i, _ in pairs[s:s + per_call]])
            kk = torch.tensor([k for _, k in pairs[s:s + per_call]])
            d = tile_over(p.sigma * u[ii, kk], h, w).to(device=x.device, dtype=x.dtype)
            xs = x[ii.to(x.device)]
            f = query(metric, torch.cat([(xs + d).clamp(0.0, 1.0), (xs - d).clamp(0.0, 1.0)]), p.chunk)
            diffs[ii, kk] = (f[:len(ii)] - f[len(ii):]).float().cpu()
        g = (diffs[:, :, None, None, None] * u).sum(dim=1) / (2 * n * p.sigma)
        norm = g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        return torch.where(norm > 0, g / norm.clamp_min(1e-30), torch.zeros_like(g))

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        check_image_batch(x)
        p = self.params
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        x0 = x.detach()
        _, _, h, w = x0.shape
        lower, upper = (x0 - p.eps).clamp(0.0, 1.0), (x0 + p.eps).clamp(0.0, 1.0)
        tracker = IterateTracker(metric, x0)
        clean = query(metric, x0, p.chunk)
        used = 1
        yield tracker.record(0, x0, clean, queries=used)
        cur, best, best_score = x0.clone(), x0.clone(), clean.clone()
        it = 0
        while (n := min(p.draws, (p.queries - used - 1) // 2)) >= 1:
            with torch.no_grad():  # never across a yield: the caller's grad mode stays its own
                g = self.estimate(metric, cur, n, gen)
                step = tile_over(p.eta * metric.sign * g, h, w).to(device=x0.device, dtype=x0.dtype)
                cur = torch.minimum(torch.maximum((cur + step).clamp(0.0, 1.0), lower), upper)
                scores = query(metric, cur, p.chunk)
            used += 2 * n + 1
            it += 1
            if p.keep_best:
                better = metric.sign * scores > metric.sign * best_score
                best[better] = cur[better]
                best_score = torch.where(better, scores, best_score)
                yield tracker.record(it, best, best_score, queries=used)
            else:
                yield tracker.record(it, cur, scores, queries=used)
        return tracker.outcome(best if p.keep_best else cur, it, p.keep_best)
