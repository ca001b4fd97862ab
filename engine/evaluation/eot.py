"""Expectation over transformation (EOT) evaluation of a random defence.

A random defence gives a different output per draw, so one draw is a noisy estimate of
what it does. :func:`eot_scores` evaluates N draws; draw k uses one seed for both the
clean and the attacked image (same transform on both), and reports the mean and the
spread of M(D(x)), M(D(x_a)) and the both-defended gain over the draws.

Draw 0 uses ``seed`` itself, so N = 1 reproduces the ordinary single-draw evaluation;
draw k ≥ 1 uses ``draw_seed(seed, k)``. A deterministic defence is evaluated once.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from engine.core.seeds import derive_seed


def draw_seed(seed: int, k: int) -> int:
    """The seed of EOT draw ``k`` (draw 0 is ``seed`` itself)."""
    return int(seed) if k == 0 else derive_seed(int(seed), "eot-draw", k)


@torch.no_grad()
def eot_scores(metric: Any, defence: Any, x: torch.Tensor, x_adv: torch.Tensor,
               seed: int | Sequence[int], n: int) -> dict[str, Any]:
    """Scores of a (random) defence over ``n`` draws.

    Args:
        metric: an ``engine.metrics.base.Metric`` (``score`` and ``range`` are used).
        defence: an ``engine.defences.base.Defence`` (called as ``defence(x, seed=s)``).
        x: clean batch :math:`(B, 3, H, W)` in [0, 1].
        x_adv: attacked batch, same shape.
        seed: the item's defence seed; for a batch of several items one per image
            (draw k of image i then uses ``draw_seed(seed[i], k)``).
        n: number of draws (≥ 1); a deterministic defence is drawn once.

    Returns:
        ``draws`` (int) and ``seeds`` (list), then for each of ``defended-clear`` (M(D(x))),
        ``defended-attacked`` (M(D(x_a))) and ``both_defended_abs_gain``
        (|M(D(x)) − M(D(x_a))| / range): the per-draw values :math:`(N, B)` under the key
        itself and ``<key>_mean`` / ``<key>_std`` :math:`(B,)` (population std, 0 for one
        draw).

    Example:
        >>> r = eot_scores(niqe, random_noise, x, x_adv, seed=3, n=8)
        >>> float(r["defended-attacked_mean"][0]), float(r["defended-attacked_std"][0])
    """
    if n < 1:
        raise ValueError(f"EOT needs at least one draw, got n={n}")
    if x.shape != x_adv.shape:
        raise ValueError(f"clean {tuple(x.shape)} and attacked {tuple(x_adv.shape)} differ in shape")
    draws = n if getattr(defence, "random", False) else 1
    if isinstance(seed, Sequence):
        seeds: list[Any] = [[draw_seed(s, k) for s in seed] for k in range(draws)]
    else:
        seeds = [draw_seed(seed, k) for k in range(draws)]
    clean, attacked = [], []
    for s in seeds:
        clean.append(metric.score(defence(x, seed=s)).detach().float().cpu())
        attacked.append(metric.score(defence(x_adv, seed=s)).detach().float().cpu())
    values = {"defended-clear": torch.stack(clean), "defended-attacked": torch.stack(attacked)}
    values["both_defended_abs_gain"] = (values["defended-clear"] - values["defended-attacked"]).abs() / metric.range
    out: dict[str, Any] = {"draws": draws, "seeds": seeds}
    for key, v in values.items():
        out[key] = v
        # column by column: a reduction over (N, B) rounds differently from (N, 1), and a
        # batched run must give each image the numbers it gets alone
        cols = [v[:, i:i + 1] for i in range(v.shape[1])]
        out[f"{key}_mean"] = torch.cat([c.mean(0) for c in cols])
        out[f"{key}_std"] = torch.cat([c.std(0, correction=0) for c in cols])
    return out
