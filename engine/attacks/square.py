"""Square attack, L∞ (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020), score-only.

Random search on the vertices of the L∞ ball: the perturbation starts as vertical stripes
of ±ε (one random sign per column and channel); each query replaces one random square
window of it by a random vertex (per channel one sign, value ±ε over the window) and keeps
the change when the score gets better. The window's area is the fraction ``p`` of the
image, ``p`` halved at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of a
10,000-query run (the schedule is rescaled to the budget, as in the paper's code).

Constrains: L∞ ≤ ε around the original, image in [0, 1]; at most ``queries`` metric
forwards per image.

Paper defaults: ε = 0.05 (their ImageNet L∞ setting), p_init = 0.05, 10,000 queries.

Differences of MSU's published code (``adversarial-defenses-for-iqa``,
``metrics/methods/square-attack/run.py``), reproduced by the ``msu-recipe`` preset
(MSU's recipe; not ``msu-literal``: the random draws cannot be MSU's):

* the search starts from the clean image (δ = 0), not from the ±ε stripes
  (``init="zero"``);
* ε = 0.1 by default and 10,000 iterations;
* window positions are drawn in a fixed 256×256 frame whatever the image size (for
  256×256 inputs, the benchmark's crop, it is the same as ours; not reproduced for other
  sizes: we draw over the whole image);
* its draws come from NumPy's global generator, ours from the run's seeded generator, so
  only the recipe, not the random stream, is the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks._black_box import (BlackBoxAttack, BlackBoxParams, SearchState, query,
                                       query_presets, rand_int, rand_sign)
from engine.attacks.base import ATTACKS
from engine.attacks.sign_gradient import linf_presets
from engine.spec.params import param

#: iterations (of 10,000) after which p is halved
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, it: int, n_iters: int) -> float:
    """The paper's piecewise-constant window fraction at iteration ``it`` of ``n_iters``."""
    t = int(it / max(n_iters, 1) * 10000)
    return p_init / (2 ** sum(t > h for h in HALVINGS))


@dataclass
class SquareParams(BlackBoxParams):
    eps: float = param(0.05, min=0.0, max=1.0, help="L∞ budget of the perturbation", unit="×255",
                       step=1 / 255)
    p_init: float = param(0.05, min=1e-6, max=1.0, help="initial window area as a fraction of the image")
    init: str = param("stripes", choices=("stripes", "zero"),
                      help="start: vertical ±ε stripes (paper) or the clean image (MSU's code)")


@ATTACKS.register("square")
class Square(BlackBoxAttack):
    """Square attack (L∞ random search over square windows).

    Example:
        >>> out = Square(eps=8/255, queries=1000)(x, metric)
    """

    Params = SquareParams
    presets = {"paper": {}, "msu-recipe": {"eps": 0.1, "init": "zero", "queries": 10000},
               **query_presets(), **linf_presets()}

    def start(self, state: SearchState, generator: torch.Generator) -> dict:
        p = self.params
        x0 = state.x0
        b, c, _, w = x0.shape
        if p.init == "stripes":
            delta = (rand_sign((b, c, 1, w), generator) * p.eps).expand(-1, -1, x0.shape[2], -1)
            delta = delta.to(device=x0.device, dtype=x0.dtype).contiguous()
            cand = (x0 + delta).clamp(0.0, 1.0)
            good = state.offer(torch.arange(b), cand, query(state.metric, cand, p.chunk))
            # the search continues from the stripes even where they scored worse than clean
            return {"delta": delta, "good": good.clone(), "it": 1, "cur": cand}
        return {"delta": torch.zeros_like(x0), "good": state.best_good.clone(), "it": 0, "cur": x0.clone()}

    def advance(self, state: SearchState, search: dict, generator: torch.Generator) -> bool:
        p = self.params
        x0 = state.x0
        b, c, h, w = x0.shape
        delta, cur = search["delta"], search["cur"]
        for _ in range(self.block_size()):
            active = torch.nonzero(state.left() > 0).flatten()
            if len(active) == 0:
                return False
            frac = p_schedule(p.p_init, search["it"], p.queries)
            s = min(max(int(round((frac * h * w) ** 0.5)), 1), max(min(h, w) - 1, 1))
            top = rand_int(h - s + 1, (b,), generator)
            left = rand_int(w - s + 1, (b,), generator)
            new = delta.clone()
            for i in active.tolist():
                win = (slice(None), slice(int(top[i]), int(top[i]) + s), slice(int(left[i]), int(left[i]) + s))
                for _try in range(10):  # redraw when the window would not change the image
                    v = (rand_sign((c, 1, 1), generator) * p.eps).to(device=x0.device, dtype=x0.dtype)
                    if not torch.equal((x0[i][win] + v).clamp(0, 1), cur[i][win]):
                        break
                new[i][win] = v
            cand = (x0[active] + new[active]).clamp(0.0, 1.0)
            good = state.offer(active, cand, query(state.metric, cand, p.chunk))
            keep = good > search["good"][active]
            rows = active[keep.cpu()]
            delta[rows] = new[rows]
            cur[rows] = cand[keep]
            search["good"][rows] = good[keep]
            search["it"] += 1
        return True
