"""The leaderboard: defences and metrics ranked, with intervals, from the summary.

Laid out like MSU's public leaderboard pages (one table per ranking, a rank column, the
score with its 95 % interval, then the secondary scores):

* **defences** (per metric, per attack and over all attacks): ranked by remaining gain
  (``robust_abs_gain``, lower is better) among the defences whose quality
  (``quality_score`` of D(x_a) against x) reaches the quality floor, and by Pareto rank of
  (remaining gain ↓, quality ↑): 1 = the non-dominated front, 2 = the front once rank 1
  is removed, and so on. ``none`` is listed as the baseline, unranked.
* **metrics** (per attack and over all attacks, no defence): ranked by the AAAI-24
  robustness score (higher is more robust), with MRB's normalised gains, the signed
  Wasserstein/energy distances and "survives compression": the normalised gain left
  after the attacked image is JPEG-compressed (the ``jpeg`` defence's row: its M(D(x_a))
  is the compressed attacked image, compared with the uncompressed clean image), and the
  Integral Robustness Score (``irs``: the robustness score integrated over the ε presets
  of the row's attack; :mod:`engine.evaluation.integral_robustness`).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from engine.core.labels import component_label

QUALITY_FLOOR = 0.5
GAIN, QUALITY, ROBUSTNESS = "robust_abs_gain", "quality_score", "robustness"
METRIC_SCORES = ("robustness", "mrb_abs_gain", "mrb_rel_gain", "wasserstein", "energy")
COMPRESSION_DEFENCE = "jpeg"


def _ci(prefix: str) -> list[str]:
    return [prefix, f"{prefix}_ci_low", f"{prefix}_ci_high"]


LEADERBOARD_COLUMNS = [
    "table", "metric", "attack", "rank", "pareto_rank", "name", "preset", *_ci("gain"), *_ci("quality"),
    "meets_floor", *[c for s in METRIC_SCORES for c in _ci(s)], "compression", *_ci("compressed_gain"),
    "irs", "n", "note",
]


def pareto_ranks(points: list[tuple[float, float]]) -> list[int | None]:
    """Non-dominated sorting of (gain, quality): lower gain and higher quality win.

    Example:
        >>> pareto_ranks([(0.1, 0.6), (0.2, 0.5), (0.05, 0.3), (0.3, 0.4)])
        [1, 2, 1, 3]
    """
    ranks: list[int | None] = [None] * len(points)
    left = {i for i, (g, q) in enumerate(points) if not (math.isnan(g) or math.isnan(q))}
    level = 0
    while left:
        level += 1
        front = {i for i in left if not any(
            points[j][0] <= points[i][0] and points[j][1] >= points[i][1] and points[j] != points[i]
            for j in left)}
        for i in front:
            ranks[i] = level
        left -= front
    return ranks


def _blocks(summary: Iterable[dict[str, Any]]) -> OrderedDict[tuple, OrderedDict[tuple, dict[str, dict]]]:
    """(metric, attack label) → (defence, preset) → score → summary row."""
    out: OrderedDict[tuple, OrderedDict[tuple, dict[str, dict]]] = OrderedDict()
    for s in summary:
        attack = "all attacks" if s.get("attack") == "total" else component_label(s.get("attack"), s.get("attack_preset"))
        key = (s.get("metric"), attack)
        out.setdefault(key, OrderedDict()).setdefault((s.get("defence"), s.get("defence_preset")), {})[
            str(s.get("score"))] = s
    return out


def _value(scores: dict[str, dict], name: str) -> float:
    v = (scores.get(name) or {}).get("value")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def _with_ci(scores: dict[str, dict], score: str, prefix: str) -> dict[str, Any]:
    s = scores.get(score) or {}
    return {prefix: s.get("value"), f"{prefix}_ci_low": s.get("ci_low"), f"{prefix}_ci_high": s.get("ci_high")}


def _rank(values: list[float], eligible: list[bool], lower_better: bool) -> list[int | None]:
    order = sorted((i for i, ok in enumerate(eligible) if ok and not math.isnan(values[i])),
                   key=lambda i: values[i] if lower_better else -values[i])
    ranks: list[int | None] = [None] * len(values)
    for r, i in enumerate(order, 1):
        ranks[i] = r
    return ranks


def defence_table(summary: Iterable[dict[str, Any]], floor: float = QUALITY_FLOOR) -> list[dict[str, Any]]:
    """Defences ranked per (metric, attack): see the module docstring."""
    out = []
    for (metric, attack), defences in _blocks(summary).items():
        names = [d for d in defences if d[0] != "none"]
        gains = [_value(defences[d], GAIN) for d in names]
        quals = [_value(defences[d], QUALITY) for d in names]
        meets = [not math.isnan(q) and q >= floor for q in quals]
        ranks = _rank(gains, meets, lower_better=True)
        pareto = pareto_ranks(list(zip(gains, quals)))
        baseline = [(None, None, d, None, "baseline: no defence") for d in defences if d[0] == "none"]
        entries = [(r, p, d, ok, "" if ok else ("no quality value" if math.isnan(q) else
                                                f"quality below the floor {floor:g}"))
                   for d, r, p, ok, q in zip(names, ranks, pareto, meets, quals)]
        ranked = sorted((t for t in entries if t[0] is not None), key=lambda t: t[0])
        unranked = sorted((t for t in entries if t[0] is None), key=lambda t: t[1] or math.inf)
        rows = baseline + ranked + unranked
        for r, p, d, ok, note in rows:
            sc = defences[d]
            out.append({"table": "defences", "metric": metric, "attack": attack, "rank": r, "pareto_rank": p,
                        "name": d[0], "preset": d[1], **_with_ci(sc, GAIN, "gain"),
                        **_with_ci(sc, QUALITY, "quality"), "meets_floor": ok,
                        "n": (sc.get(GAIN) or {}).get("count"), "note": note})
    return out


def metric_table(summary: Iterable[dict[str, Any]], compression: str = COMPRESSION_DEFENCE) -> list[dict[str, Any]]:
    """Metrics ranked per attack by robustness (no defence), with MRB's scores."""
    from engine.evaluation.integral_robustness import irs_table

    summary = list(summary)
    blocks = _blocks(summary)
    # Integral Robustness Score of each (metric, attack) over the attack's ε presets, no defence
    irs = {(r["metric"], r["attack"]): r["irs"] for r in irs_table(summary) if r["defence"] == "none"}
    per_attack: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for (metric, attack), defences in blocks.items():
        base = next((defences[d] for d in defences if d[0] == "none"), None)
        if base is None:
            continue
        row: dict[str, Any] = {"table": "metrics", "metric": metric, "attack": attack, "name": metric,
                               "n": (base.get(ROBUSTNESS) or {}).get("count"),
                               "irs": irs.get((metric, attack.split("[")[0]))}
        for s in METRIC_SCORES:
            row.update(_with_ci(base, s, s))
        comp = next((d for d in defences if d[0] == compression), None)
        if comp is not None:
            row["compression"] = component_label(*comp)
            row.update(_with_ci(defences[comp], "mrb_abs_gain", "compressed_gain"))
        per_attack.setdefault(attack, []).append(row)
    out = []
    for rows in per_attack.values():
        vals = [float(r["robustness"]) if isinstance(r.get("robustness"), (int, float)) else math.nan for r in rows]
        for r, rank in zip(rows, _rank(vals, [True] * len(rows), lower_better=False)):
            r["rank"] = rank
        out.extend(sorted(rows, key=lambda r: (r["rank"] is None, r["rank"] or 0)))
    return out


def leaderboard(summary: list[dict[str, Any]], floor: float = QUALITY_FLOOR) -> list[dict[str, Any]]:
    """Both tables, defences first, as rows with :data:`LEADERBOARD_COLUMNS`."""
    return defence_table(summary, floor) + metric_table(summary)
