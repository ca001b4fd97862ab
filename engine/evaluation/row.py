"""Assemble one result row (image × metric × attack × defence) from scores and images."""
from __future__ import annotations

from typing import Any

import torch

from engine.evaluation import scores as S
from engine.evaluation.columns import PAIR_KEYS, PAIRS
from engine.evaluation.pairs import IDENTICAL, compare

class PairMeasures:
    """Pair measures of one image's tensors, each distinct pair computed once.

    The same tensor object on both sides (``none``'s D(x) is x) is an identical pair:
    :data:`~engine.evaluation.pairs.IDENTICAL`, not computed. A pair of tensors already
    measured (x against x_a, shared by every defence) is looked up. The tensors are held,
    so their ids stay unique for the cache's life (one item).
    """

    def __init__(self) -> None:
        self._done: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, dict[str, float]]] = {}

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
        if a is b:
            return IDENTICAL
        key = (id(a), id(b))
        if key not in self._done:
            self._done[key] = (a, b, compare(a, b))
        return self._done[key][2]

    def pairs(self, images: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
        """The five :data:`PAIRS` of ``images`` (``x``, ``xa``, ``dx``, ``dxa``)."""
        return {pair: self(images[a], images[b]) for pair, a, b in PAIRS}


def evaluate_pair(*, clean: float, attacked: float, defended_clean: float, defended_attacked: float,
                  images: dict[str, torch.Tensor], bounds: tuple[float, float], score_range: float,
                  geometric: bool, measures: PairMeasures | None = None) -> dict[str, Any]:
    """Every pair measure and score for one defence.

    Args:
        clean, attacked, defended_clean, defended_attacked: M(x), M(x_a), M(D(x)), M(D(x_a)).
        images: ``x``, ``xa``, ``dx``, ``dxa`` as 1×3×H×W tensors.
        bounds: the metric's (worst, best); score_range: its range.
        geometric: whether the defence changes geometry (flip, crop, rotate).
        measures: the image's :class:`PairMeasures`, shared by its defences (a fresh
            one when omitted).
    """
    row: dict[str, Any] = {"clear": clean, "attacked": attacked,
                           "defended-clear": defended_clean, "defended-attacked": defended_attacked}
    measured = (measures or PairMeasures()).pairs(images)
    for pair, m in measured.items():
        for k in PAIR_KEYS:
            row[f"{k}_{pair}"] = m[k]
    cd, cdc, dd = (measured["clear_defended-attacked"], measured["clear_defended-clear"],
                   measured["defended-clear_defended-attacked"])
    robust_abs = S.abs_gain(clean, defended_attacked, score_range)
    nonpurified_abs = S.abs_gain(clean, attacked, score_range)
    row.update({
        "robust_abs_gain": robust_abs,
        "robust_rel_gain": S.rel_gain(clean, defended_attacked),
        "nonpurified_abs_gain": nonpurified_abs,
        "nonpurified_rel_gain": S.rel_gain(clean, attacked),
        "both_defended_abs_gain": S.abs_gain(defended_clean, defended_attacked, score_range),
        "both_defended_rel_gain": S.rel_gain(defended_clean, defended_attacked),
        "gain_removed": S.gain_removed(robust_abs, nonpurified_abs),
        "quality_score": S.quality_score(cd["ssim"], cd["psnr"]),
        "quality_score_clear": S.quality_score(cdc["ssim"], cdc["psnr"]),
        "similarity_score": S.similarity_score(cd["ssim"], cd["psnr"]),
        "geometry_aware_quality": S.quality_score(dd["ssim"], dd["psnr"]) if geometric else float("nan"),
        "robustness": S.robustness_term(clean, defended_attacked, bounds),
        "nonpurified_robustness": S.robustness_term(clean, attacked, bounds),
    })
    s0, s1 = S.scaled(clean, bounds), S.scaled(defended_attacked, bounds)
    row.update({"norm_clear": s0, "norm_defended-attacked": s1,
                "mrb_abs_gain": S.normalised_abs_gain(s0, s1), "mrb_rel_gain": S.normalised_rel_gain(s0, s1)})
    return row
