"""Patch-RS: the image-specific patch attack of Sparse-RS (Croce, Andriushchenko, Singh,
Flammarion, Hein, AAAI 2022), score-only.

A square patch of ``area`` pixels (side ⌈√area⌉) overwrites the image at a searched
position; its content lives on the colour-cube vertices {0, 1}³. The patch starts as a
mosaic of random small squares of random vertex colours at a random position. Each query
either moves the patch by a random shift of at most ``sh`` pixels (every
``loc_period``-th query while ``sh > 0``; ``sh`` shrinks linearly from 0.75·H to 0), or
repaints a random square inside the patch (side ``√p·s``, ``p`` on Square's halving
schedule from ``p_init``) with a random different vertex colour; when the square is down
to 1 px, the second half of the remaining queries flip single channels of single
pixels. A change is kept when the score gets better.

Constrains: only the patch's pixels change (L0 ≤ area per channel), image in [0, 1]; at
most ``queries`` metric forwards per image.

Defaults: 20×20 patches (area 400, the paper's ImageNet patch experiments), p_init 0.8,
location update every 4th query, 10,000 queries, "random squares" initialisation (the
paper's code).

Differences of MSU's published code (``adversarial-defenses-for-iqa``,
``metrics/methods/patch-rs/run.py``), reproduced by the ``msu-recipe`` preset
(MSU's recipe; not ``msu-literal``: the random draws cannot be MSU's):

* a 13×13 patch (``area=169``), 10,000 queries;
* repainting adds a random ±1 per channel to the window and clips, which leaves a channel
  unchanged half the time instead of always drawing a different vertex (not reproduced:
  the accepted patches stay on the vertices either way);
* a global ``torch.manual_seed(0)`` seeds its draws; ours come from the run's generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.attacks._black_box import (BlackBoxAttack, BlackBoxParams, SearchState, query,
                                       query_presets, rand_int)
from engine.attacks.base import ATTACKS
from engine.attacks.square import p_schedule  # Sparse-RS's patch schedule is Square's
from engine.spec.params import param


@dataclass
class PatchRSParams(BlackBoxParams):
    area: int = param(400, min=1, max=1_000_000, help="patch area in pixels (a square of side ⌈√area⌉)")
    p_init: float = param(0.8, min=1e-6, max=1.0, help="initial repaint-window area as a fraction of the patch")
    loc_period: int = param(4, min=2, max=100000, help="every n-th query moves the patch (while the shift > 0)")
    init_squares: int = param(1000, min=0, max=100000, help="random squares painted into the initial patch")


@ATTACKS.register("patch-rs")
class PatchRS(BlackBoxAttack):
    """Random search over a patch's position and content.

    Example:
        >>> out = PatchRS(area=144, queries=1000)(x, metric)
    """

    Params = PatchRSParams
    strength_param = "area"
    presets = {"paper": {}, "msu-recipe": {"area": 169, "queries": 10000},
               **query_presets(), **{f"area={a}": {"area": a} for a in (49, 169, 400, 625)}}

    def _side(self, h: int, w: int) -> int:
        return max(1, min(int(math.ceil(self.params.area ** 0.5)), h, w))

    def _window(self, it: int, side: int) -> int:
        """Side of the repaint window at query ``it`` for a patch of ``side``."""
        return int(max(p_schedule(self.params.p_init, it, self.params.queries) ** 0.5 * side, 1))

    def _paste(self, x0: torch.Tensor, patches: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        out = x0.clone()
        s = patches.shape[-1]
        for i in range(x0.shape[0]):
            y, x = int(loc[i, 0]), int(loc[i, 1])
            out[i, :, y:y + s, x:x + s] = patches[i]
        return out

    def start(self, state: SearchState, generator: torch.Generator) -> dict:
        p = self.params
        b, c, h, w = state.x0.shape
        s = self._side(h, w)
        patches = torch.zeros(b, c, s, s)
        hi = max(2, math.ceil(s ** 0.5))
        for i in range(b):
            for _ in range(p.init_squares):
                size = 1 + int(rand_int(hi - 1, (1,), generator))
                y, x = rand_int(s - size + 1, (2,), generator).tolist()
                patches[i, :, y:y + size, x:x + size] = torch.randint(0, 2, (c, 1, 1), generator=generator).float()
        loc = torch.stack([rand_int(h - s + 1, (b,), generator), rand_int(w - s + 1, (b,), generator)], dim=1)
        patches = patches.to(state.x0)
        cand = self._paste(state.x0, patches, loc)
        good = state.offer(torch.arange(b), cand, query(state.metric, cand, p.chunk))
        # when the 1-px repaint stage starts: half of what is left after it is reached
        first_1px = next((it for it in range(p.queries) if self._window(it, s) == 1), p.queries)
        return {"patches": patches, "loc": loc, "good": good.clone(), "it": 1, "s": s,
                "single_from": first_1px + (p.queries - first_1px) // 2}

    def advance(self, state: SearchState, search: dict, generator: torch.Generator) -> bool:
        p = self.params
        b, c, h, w = state.x0.shape
        s = search["s"]
        for _ in range(self.block_size()):
            active = torch.nonzero(state.left() > 0).flatten()
            if len(active) == 0:
                return False
            it = search["it"]
            s_it = self._window(it, s)
            sh = int(max((p.queries - it) / p.queries, 0.0) * 0.75 * h)
            move = it % p.loc_period == 0 and sh > 0
            patches, loc = search["patches"].clone(), search["loc"].clone()
            for i in active.tolist():
                if move:
                    loc[i] += rand_int(2 * sh + 1, (2,), generator) - sh
                    loc[i, 0].clamp_(0, h - s)
                    loc[i, 1].clamp_(0, w - s)
                    continue
                y, x = rand_int(s - s_it + 1, (2,), generator).tolist()
                win = patches[i, :, y:y + s_it, x:x + s_it]
                if it >= search["single_from"] and s_it == 1:
                    ch = int(rand_int(c, (1,), generator))
                    win[ch] = 1.0 - win[ch]
                else:
                    old = win[:, :1, :1].flatten().cpu()
                    new = torch.randint(0, 2, (c,), generator=generator).float()
                    if s_it == 1:
                        while torch.equal(new, old):
                            new = torch.randint(0, 2, (c,), generator=generator).float()
                    win.copy_(new.view(c, 1, 1).expand_as(win))
            cand = self._paste(state.x0[active], patches[active], loc[active])
            good = state.offer(active, cand, query(state.metric, cand, p.chunk))
            keep = (good > search["good"][active]).cpu()
            rows = active[keep]
            search["patches"][rows] = patches[rows]
            search["loc"][rows] = loc[rows]
            search["good"][rows] = good[keep.to(good.device)]
            search["it"] += 1
        return True
