"""Parsimonious black-box attack (Moon, An, Song, ICML 2019), L∞, score-only.

The perturbation lives on the vertices {−ε, +ε} of the L∞ ball and is constant on square
blocks (per channel). It starts at −ε everywhere; the blocks are visited in mini-batches
in a random order, and for each mini-batch one round of accelerated (lazy) greedy local
search flips block signs: first *insert* (−ε → +ε), then *delete* (+ε → −ε). Every
candidate flip of the mini-batch is scored once (one query each); then the best is
flipped and the rest are re-scored lazily from a priority queue (one query per re-score)
while they still improve the score. When every block has been visited the block size is
halved (down to 1 px) and a new random order is drawn.

Constrains: L∞ ≤ ε around the original, image in [0, 1]; at most ``queries`` metric
forwards per image (the search stops mid-batch when the budget is spent).

Paper defaults: ε = 0.05, initial block 16 px, 64 blocks per mini-batch, one local-search
round per mini-batch, blocks halved after each pass.

Differences of MSU's published code (``adversarial-defenses-for-iqa``,
``metrics/methods/parsimonious/run.py``), reproduced by the ``msu-recipe`` preset
(MSU's recipe; not ``msu-literal``: the random draws cannot be MSU's):

* initial block 32 px on a fixed 256×256 noise grid that is resized (nearest) to the
  image (``grid=256``; ours default to the image's own pixel grid, ``grid=0``);
* after the first (unconditional) flip of a round the running loss is updated as
  ``curr += margin`` with the margin's sign flipped for maximisation, so it tracks
  ``2·curr − new`` instead of ``new`` (``msu_margin=True``); the next re-scored flip is
  compared against that value (an accepted re-scored flip resets it to the true loss);
* the budget is checked only after a whole mini-batch, which can overrun it, and the
  image from before that mini-batch is returned — not reproduced: we never exceed the
  budget;
* NumPy's global generator, not the run's seed.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.attacks._black_box import BlackBoxAttack, BlackBoxParams, SearchState, query, query_presets
from engine.attacks.base import ATTACKS
from engine.attacks.sign_gradient import linf_presets
from engine.spec.params import param


@dataclass
class ParsimoniousParams(BlackBoxParams):
    eps: float = param(0.05, min=0.0, max=1.0, help="L∞ budget (the perturbation is ±ε everywhere)",
                       unit="×255", step=1 / 255)
    block: int = param(16, min=1, max=1024, help="initial block side in noise-grid pixels (halved each pass)")
    batch_blocks: int = param(64, min=1, max=100000, help="blocks per local-search mini-batch")
    grid: int = param(0, min=0, max=4096,
                      help="side of the noise grid resized (nearest) to the image; 0 = the image's own pixels")
    msu_margin: bool = param(False, help="MSU's running-loss update after the first flip (curr += margin)")


class _Search:
    """One image's parsimonious state: the sign noise, the block list and where we are."""

    def __init__(self, shape: tuple[int, int, int], block: int, generator: torch.Generator) -> None:
        self.noise = -torch.ones(shape)
        self.block = block
        self.generator = generator
        self._new_blocks()

    def _new_blocks(self) -> None:
        c, gh, gw = self.noise.shape
        self.blocks = [(ch, y, x) for y in range(0, gh, self.block) for x in range(0, gw, self.block)
                       for ch in range(c)]
        self.order = torch.randperm(len(self.blocks), generator=self.generator).tolist()
        self.pos = 0

    def next_batch(self, n: int) -> list[tuple[int, int, int]]:
        if self.pos >= len(self.order):
            if self.block >= 2:
                self.block //= 2
            self._new_blocks()
        out = [self.blocks[k] for k in self.order[self.pos:self.pos + n]]
        self.pos += n
        return out

    def flipped(self, blk: tuple[int, int, int], noise: torch.Tensor | None = None) -> torch.Tensor:
        ch, y, x = blk
        n = (self.noise if noise is None else noise).clone()
        n[ch, y:y + self.block, x:x + self.block] *= -1
        return n


@ATTACKS.register("parsimonious")
class Parsimonious(BlackBoxAttack):
    """Lazy-greedy sign flips of ±ε blocks.

    Example:
        >>> out = Parsimonious(eps=8/255, queries=1000)(x, metric)
    """

    Params = ParsimoniousParams
    presets = {"paper": {}, "msu-recipe": {"block": 32, "grid": 256, "msu_margin": True, "queries": 10000},
               **query_presets(), **linf_presets()}

    def _image(self, state: SearchState, i: int, noises: torch.Tensor) -> torch.Tensor:
        """Candidate images of image ``i`` for sign noises :math:`(K, 3, g, g)`."""
        x0 = state.x0[i:i + 1]
        n = noises.to(device=x0.device, dtype=x0.dtype)
        if tuple(n.shape[-2:]) != tuple(x0.shape[-2:]):
            n = F.interpolate(n, size=tuple(x0.shape[-2:]), mode="nearest")
        return (x0 + self.params.eps * n).clamp(0.0, 1.0)

    def _score(self, state: SearchState, i: int, noises: list[torch.Tensor]) -> list[float]:
        """Loss (−sign·score, minimised) of each noise, one query each."""
        imgs = self._image(state, i, torch.stack(noises))
        good = state.offer(torch.full((len(noises),), i), imgs, query(state.metric, imgs, self.params.chunk))
        return (-good).tolist()

    def start(self, state: SearchState, generator: torch.Generator) -> list:
        _, c, h, w = state.x0.shape
        g = self.params.grid
        searches = [_Search((c, g or h, g or w), self.params.block, generator) for _ in range(state.x0.shape[0])]
        for i, s in enumerate(searches):
            if state.left(i) > 0:
                s.loss = self._score(state, i, [s.noise])[0]
        return searches

    def advance(self, state: SearchState, searches: list, generator: torch.Generator) -> bool:
        for i, s in enumerate(searches):
            if state.left(i) <= 0:
                continue
            blocks = s.next_batch(self.params.batch_blocks)
            for phase in (-1.0, 1.0):  # insert: flip −ε blocks; delete: flip +ε blocks
                cands = [b for b in blocks if float(s.noise[b[0], b[1], b[2]]) == phase]
                if not self._greedy(state, i, s, cands, ties=phase < 0):
                    break
        return True

    def _greedy(self, state: SearchState, i: int, s: _Search, cands: list, ties: bool) -> bool:
        """One lazy-greedy pass over ``cands``; False when the budget ran out."""
        if not cands:
            return True
        n = min(len(cands), state.left(i))
        if n <= 0:
            return False
        losses = self._score(state, i, [s.flipped(b) for b in cands[:n]])
        heap = [(l - s.loss, k) for k, l in enumerate(losses)]
        heapq.heapify(heap)
        margin, k = heapq.heappop(heap)  # the best flip is taken unconditionally
        s.noise = s.flipped(cands[k])
        s.loss = s.loss - margin if self.params.msu_margin else s.loss + margin
        while heap:
            if state.left(i) <= 0:
                return False
            _, k = heapq.heappop(heap)
            margin = self._score(state, i, [s.flipped(cands[k])])[0] - s.loss
            if not heap or margin <= heap[0][0]:
                if margin > 0 or (margin == 0 and not ties):  # inserts accept ties, deletes do not
                    break
                s.loss += margin
                s.noise = s.flipped(cands[k])
            else:
                heapq.heappush(heap, (margin, k))
        return n == len(cands)
