"""Shared loop of the score-only (black-box) attacks: Square, Parsimonious, One-pixel, Patch-RS.

A query is one metric forward of one image, always under ``torch.no_grad`` (no gradient
is ever asked for, so these attacks also run on metrics whose backward pass is poor or
missing). Every image of the batch has its own search state and its own budget of
``queries`` (the clean image's score counts as the first query); candidates of several
images are scored in one batched call.

The step unit is a block of queries: iteration 0 is the clean image, then one record per
block with the queries spent so far and the best score found so far (``queries`` in the
record, so the live curve and the report plot gain against queries). The result is the
best image found (never worse than the clean one unless nothing better was found — then
it is the clean image itself).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from engine.attacks.base import Attack, AttackParams, AttackRun, IterateTracker
from engine.metrics.base import Metric, check_image_batch
from engine.spec.params import param

#: the query budgets every black-box attack has a preset for
QUERY_BUDGETS = (100, 1000, 10000)


def query_presets(by_budget: dict[int, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Presets ``queries=N`` for :data:`QUERY_BUDGETS` (plus per-budget overrides)."""
    return {f"queries={q}": {"queries": q, **(by_budget or {}).get(q, {})} for q in QUERY_BUDGETS}


@dataclass
class BlackBoxParams(AttackParams):
    queries: int = param(10000, min=2, max=10_000_000,
                         help="query budget per image (one query = one metric forward of one image; "
                              "the clean score is the first)")
    chunk: int = param(64, min=1, max=4096,
                       help="most images per metric call (memory; scores equal up to the metric's batch numerics)")


class SearchState:
    """Per-image state every black-box search has: the best image and score so far and
    the queries spent.

    Attributes:
        x0: the clean batch :math:`(B, 3, H, W)`.
        best: best image found per image (starts as the clean image).
        best_good: ``sign·score`` of ``best`` (higher is better), :math:`(B,)`.
        best_score: raw score of ``best``, :math:`(B,)`.
        used: queries spent per image, :math:`(B,)` int64.
        budget: the per-image query budget.
    """

    def __init__(self, x0: torch.Tensor, clean: torch.Tensor, metric: Metric, budget: int) -> None:
        self.x0 = x0
        self.metric = metric
        self.budget = budget
        self.best = x0.clone()
        self.best_score = clean.clone()
        self.best_good = metric.sign * clean
        self.used = torch.ones(x0.shape[0], dtype=torch.long)

    def left(self, i: int | None = None) -> int | torch.Tensor:
        """Queries left for image ``i`` (or all, as a tensor)."""
        rest = self.budget - self.used
        return int(rest[i]) if i is not None else rest

    @property
    def exhausted(self) -> bool:
        return bool((self.used >= self.budget).all())

    def offer(self, idx: torch.Tensor, images: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Record scored candidates ``images[k]`` of images ``idx[k]`` (one query each);
        keep a candidate as the best when it beats the best so far. Returns
        ``sign·scores``. Several candidates of one image: the best of them competes."""
        idx = idx.to(torch.long).cpu()
        good = self.metric.sign * scores
        self.used.index_add_(0, idx, torch.ones_like(idx))
        if len(torch.unique(idx)) == len(idx):  # one candidate per image: vectorised
            better = (good > self.best_good[idx].to(good.device)).cpu()
            if bool(better.any()):
                rows = idx[better]
                self.best_good[rows] = good[better.to(good.device)].to(self.best_good.device)
                self.best_score[rows] = scores[better.to(scores.device)].to(self.best_score.device)
                self.best[rows.to(self.best.device)] = images[better.to(images.device)]
            return good
        for i in torch.unique(idx).tolist():
            mine = torch.nonzero(idx == i).flatten()
            k = int(mine[torch.argmax(good[mine])])
            if bool(good[k] > self.best_good[i]):
                self.best_good[i] = good[k]
                self.best_score[i] = scores[k]
                self.best[i].copy_(images[k])
        return good


def query(metric: Metric, images: torch.Tensor, chunk: int) -> torch.Tensor:
    """Scores of a stack of candidate images, ``chunk`` at a time, without gradients."""
    with torch.no_grad():
        if images.shape[0] <= chunk:
            return metric.score(images).detach()
        return torch.cat([metric.score(images[i:i + chunk]).detach()
                          for i in range(0, images.shape[0], chunk)])


class BlackBoxAttack(Attack):
    """Template: subclasses implement :meth:`start` (build the search state, may spend
    queries) and :meth:`advance` (spend one block of queries); the loop, the step records
    and the stop points between blocks are here."""

    batchable = False  # one random search state and generator for the whole batch

    Params = BlackBoxParams
    #: score-only: needs no gradient (and the step unit is a block of queries)
    black_box: ClassVar[bool] = True
    #: blocks a budget is reported in (a block is at least one query round)
    BLOCKS: ClassVar[int] = 50

    def block_size(self) -> int:
        """Queries per image per reported step."""
        return max(1, math.ceil(self.params.queries / self.BLOCKS))

    def start(self, state: SearchState, generator: torch.Generator) -> Any:
        raise NotImplementedError

    def advance(self, state: SearchState, search: Any, generator: torch.Generator) -> bool:
        """Spend up to one block of queries per image; False when the search is over."""
        raise NotImplementedError

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        check_image_batch(x)
        p = self.params
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        x0 = x.detach()
        tracker = IterateTracker(metric, x0)
        clean = query(metric, x0, p.chunk)
        yield tracker.record(0, x0, clean, queries=1)
        state = SearchState(x0, clean, metric, p.queries)
        with torch.no_grad():
            search = self.start(state, gen)
        it, going = 0, True
        while going and not state.exhausted:
            with torch.no_grad():  # never across a yield: the caller's grad mode stays its own
                going = self.advance(state, search, gen)
            it += 1
            yield tracker.record(it, state.best, state.best_score, queries=int(state.used.max()))
        return tracker.outcome(state.best, it, p.keep_best)


def rand_int(high: int | torch.Tensor, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Uniform integers in ``[0, high)`` (``high`` may be a tensor broadcast to ``shape``),
    drawn on the CPU from ``generator`` so every device gets the same draw."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    return (u * torch.as_tensor(high, dtype=torch.float64)).floor().long()


def rand_sign(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """±1 with equal odds (CPU, float32)."""
    return torch.randint(0, 2, shape, generator=generator).float().mul_(2).sub_(1)
