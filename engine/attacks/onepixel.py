"""One-pixel attack (Su, Vargas, Sakurai, IEEE TEVC 2019): differential evolution over k
pixels, score-only.

A candidate is k pixels, each (row, column, r, g, b); the candidate image is the original
with those pixels set to those colours. A population of candidates evolves by
differential evolution: each generation every member i gets a trial
``x_r1 + F·(x_r2 − x_r3)`` (three other distinct members; "rand/1", no crossover) that
replaces it when the trial scores at least as well. The initial rows and columns are
uniform over the image, the colours drawn from N(128, 127) (out of 255) and clipped.
One generation is one step (``popsize`` queries per image).

Constrains: only ``pixels`` pixels per image change (L0 ≤ k), image in [0, 1]; at most
``queries`` metric forwards per image (the population is shrunk when the budget cannot
pay for one generation of it).

Paper defaults: k = 1, population 400, F = 0.5, up to 100 generations (40,401 queries
with the clean score; the default budget).

Differences of MSU's published code (``adversarial-defenses-for-iqa``,
``metrics/methods/onepixel/run.py``, SciPy's ``differential_evolution``), reproduced by
the ``msu-recipe`` preset where the recipe allows (not ``msu-literal``: the random draws
cannot be SciPy's):

* 3 pixels, population 300, 10 generations (3,301 queries), SciPy's default strategy
  "best/1" (``strategy="best1"``) with the mutation factor dithered in U(0.5, 1) per
  generation (``f=0.5, f_max=1``) and recombination 1 (all genes from the mutant, as
  here);
* initial population by Latin-hypercube sampling, colours uniform over 0–256
  (``init="uniform"``: uniform, not Latin hypercube);
* the image and the colours are quantised to 8 bits (``quantise=True``);
* SciPy's random stream is not reproduced (the recipe is; the draws differ).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.attacks._black_box import BlackBoxAttack, BlackBoxParams, SearchState, query, query_presets
from engine.attacks.base import ATTACKS
from engine.spec.params import param


@dataclass
class OnePixelParams(BlackBoxParams):
    queries: int = param(40401, min=6, max=10_000_000,
                         help="query budget per image (the clean score, the initial population, "
                              "then popsize per generation)")
    pixels: int = param(1, min=1, max=10000, help="pixels changed per image (k)")
    popsize: int = param(400, min=4, max=100000, help="population size")
    f: float = param(0.5, min=0.0, max=2.0, help="mutation factor F (lower end when dithered)")
    f_max: float = param(0.0, min=0.0, max=2.0,
                         help="if above f: F drawn uniformly in [f, f_max] each generation (dither)")
    strategy: str = param("rand1", choices=("rand1", "best1"), help="mutant base: a random member or the best")
    init: str = param("gaussian", choices=("gaussian", "uniform"),
                      help="initial colours: N(128, 127)/255 clipped (paper) or uniform")
    quantise: bool = param(False, help="round the image and the colours to 8 bits (MSU's code)")


@ATTACKS.register("onepixel")
class OnePixel(BlackBoxAttack):
    """Differential evolution over k (row, column, colour) pixels.

    Example:
        >>> out = OnePixel(pixels=3, popsize=40, queries=1000)(x, metric)
    """

    Params = OnePixelParams
    strength_param = "pixels"
    presets = {"paper": {},
               "msu-recipe": {"pixels": 3, "popsize": 300, "queries": 3301, "strategy": "best1",
                               "f_max": 1.0, "init": "uniform", "quantise": True},
               **query_presets({100: {"popsize": 11}, 1000: {"popsize": 37}, 10000: {"popsize": 101}})}

    def _images(self, base: torch.Tensor, pop: torch.Tensor) -> torch.Tensor:
        """Candidate images for ``pop`` :math:`(P, k, 5)` (row, col, r, g, b) on ``base`` (3×H×W)."""
        _, h, w = base.shape
        n, k, _ = pop.shape
        imgs = base.unsqueeze(0).repeat(n, 1, 1, 1)
        rows = pop[..., 0].floor().long().clamp(0, h - 1)
        cols = pop[..., 1].floor().long().clamp(0, w - 1)
        rgb = pop[..., 2:].clamp(0.0, 1.0)
        if self.params.quantise:
            rgb = (rgb * 255).round() / 255
        who = torch.arange(n).unsqueeze(1).expand(n, k)
        imgs[who.reshape(-1), :, rows.reshape(-1), cols.reshape(-1)] = rgb.reshape(-1, 3).to(imgs)
        return imgs

    def start(self, state: SearchState, generator: torch.Generator) -> dict:
        p = self.params
        b, _, h, w = state.x0.shape
        size = min(p.popsize, int(state.left().min()))
        if size < 4:
            raise ValueError(f"onepixel: a budget of {p.queries} queries cannot pay for a population of "
                             "4; raise 'queries' or lower 'popsize'")
        base = state.x0
        if p.quantise:
            base = (base * 255).round() / 255
        u = torch.rand((b, size, p.pixels, 5), generator=generator, dtype=torch.float64)
        pop = torch.empty_like(u)
        pop[..., 0] = u[..., 0] * h
        pop[..., 1] = u[..., 1] * w
        if p.init == "gaussian":
            g = torch.randn((b, size, p.pixels, 3), generator=generator, dtype=torch.float64)
            pop[..., 2:] = ((128 + 127 * g) / 255).clamp(0.0, 1.0)
        else:
            pop[..., 2:] = u[..., 2:]
        good = self._evaluate(state, base, pop)
        return {"pop": pop, "good": good, "base": base, "size": size}

    def _evaluate(self, state: SearchState, base: torch.Tensor, pop: torch.Tensor) -> torch.Tensor:
        """sign·score of every member of every image's population :math:`(B, P)`."""
        b, n = pop.shape[:2]
        imgs = torch.cat([self._images(base[i], pop[i]) for i in range(b)])
        scores = query(state.metric, imgs, self.params.chunk)
        good = state.offer(torch.arange(b).repeat_interleave(n), imgs, scores)
        return good.reshape(b, n).cpu().double()

    def advance(self, state: SearchState, search: dict, generator: torch.Generator) -> bool:
        p = self.params
        pop, good, n = search["pop"], search["good"], search["size"]
        if int(state.left().min()) < n:
            return False
        b, _, h, w = state.x0.shape
        # three distinct others per member: a random permutation of the rest, first three
        keys = torch.rand((b, n, n), generator=generator, dtype=torch.float64)
        keys[:, torch.arange(n), torch.arange(n)] = 2.0
        r = keys.argsort(dim=2)[..., :3]
        f = p.f
        if p.f_max > p.f:
            f = p.f + (p.f_max - p.f) * float(torch.rand((), generator=generator, dtype=torch.float64))
        pick = lambda j: torch.gather(pop, 1, r[..., j, None, None].expand(-1, -1, *pop.shape[2:]))  # noqa: E731
        if p.strategy == "best1":
            base = pop[torch.arange(b), good.argmax(dim=1)].unsqueeze(1).expand_as(pop)
        else:
            base = pick(0)
        trial = base + f * (pick(1) - pick(2))
        trial[..., 0] = trial[..., 0].clamp(0.0, h - 1e-6)
        trial[..., 1] = trial[..., 1].clamp(0.0, w - 1e-6)
        trial[..., 2:] = trial[..., 2:].clamp(0.0, 1.0)
        tgood = self._evaluate(state, search["base"], trial)
        keep = tgood >= good
        pop[keep] = trial[keep]
        good[keep] = tgood[keep]
        return True

    def block_size(self) -> int:
        return self.params.popsize
