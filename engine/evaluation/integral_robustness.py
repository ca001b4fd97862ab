"""Integral Robustness Score: one number for a metric's robustness across attack budgets.

Chistyakova et al. (2024) summarise how a model resists "a set of adversarial perturbations
with different magnitudes" in one Integral Robustness Score. We compute it as the mean of
a per-budget robustness value over the ε range, by the trapezoidal rule:

    IRS = 1/(ε_max − ε_min) · ∫ R(ε) dε

with R the leaderboard's AAAI-24 robustness score (higher = more robust) by default, or
any other per-budget summary score (e.g. ``nonpurified_abs_gain``, lower = more robust).
With a single ε the IRS is R(ε). The paper's exact normalisation was not available to us;
this is our reading of "integral over magnitudes", documented as such.

:func:`irs_table` reads a long summary (:func:`engine.results.export.summarise`): per metric,
attack name and defence it collects the blocks whose attack preset names an ``eps``
(``eps=4/255``, ``eps=0.0156863``) and integrates over them.
"""
from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

IRS_SCORE = "robustness"
_EPS = re.compile(r"(?:^|[,(\[])eps=([0-9.eE+-]+(?:/[0-9.]+)?)")


def integral_robustness(points: Sequence[tuple[float, float]]) -> float:
    """Trapezoidal mean of ``value`` over ``eps`` (points in any order; NaN values are
    dropped; NaN when none is left).

    Example:
        >>> integral_robustness([(2/255, 1.0), (4/255, 0.5), (8/255, 0.0)])
        0.4166666666666667
    """
    pts = sorted((float(e), float(v)) for e, v in points if v is not None and not math.isnan(float(v)))
    if not pts:
        return math.nan
    if len(pts) == 1 or pts[-1][0] == pts[0][0]:
        return sum(v for _, v in pts) / len(pts)
    area = sum((e1 - e0) * (v0 + v1) / 2 for (e0, v0), (e1, v1) in itertools.pairwise(pts))
    return area / (pts[-1][0] - pts[0][0])


def preset_eps(preset: Any) -> float | None:
    """The ε an attack preset label names (``eps=4/255`` → 0.01569), else None."""
    m = _EPS.search(str(preset or ""))
    if not m:
        return None
    text = m.group(1)
    try:
        if "/" in text:
            a, b = text.split("/", 1)
            return float(a) / float(b)
        return float(text)
    except (ValueError, ZeroDivisionError):
        return None


def irs_table(summary: Iterable[dict[str, Any]], score: str = IRS_SCORE) -> list[dict[str, Any]]:
    """One row per (metric, attack, defence, defence preset) with at least one ε block:
    ``metric, attack, defence, defence_preset, irs, eps`` (the budgets used, ascending),
    ``values`` (the score at each) and ``score``."""
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for s in summary:
        if s.get("score") != score or s.get("attack") == "total":
            continue
        eps = preset_eps(s.get("attack_preset"))
        v = s.get("value")
        if eps is None or not isinstance(v, (int, float)):
            continue
        key = (s.get("metric"), s.get("attack"), s.get("defence"), s.get("defence_preset"))
        groups.setdefault(key, []).append((eps, float(v)))
    out = []
    for (metric, attack, defence, dpreset), pts in groups.items():
        pts.sort()
        out.append({"metric": metric, "attack": attack, "defence": defence, "defence_preset": dpreset,
                    "score": score, "irs": integral_robustness(pts), "eps": [e for e, _ in pts],
                    "values": [v for _, v in pts]})
    return out
