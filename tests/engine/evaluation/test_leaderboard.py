"""Leaderboard: ranks by remaining gain at a quality floor, Pareto ranks, metric robustness."""
import pytest

from engine.evaluation.leaderboard import (
    defence_table,
    leaderboard,
    metric_table,
    pareto_ranks,
)


def _s(metric, defence, score, value, attack="total", lo=None, hi=None, preset="default"):
    return {"metric": metric, "attack": attack, "attack_preset": "all" if attack == "total" else "default",
            "defence": defence, "defence_preset": preset, "score": score, "value": value, "count": 5,
            "ci_low": lo, "ci_high": hi}


def _summary():
    out = []
    for d, g, q in (("none", 0.8, 0.7), ("jpeg", 0.1, 0.6), ("blur", 0.05, 0.4), ("resize", 0.2, 0.65),
                    ("median", 0.3, 0.55)):
        out += [_s("niqe", d, "robust_abs_gain", g, lo=g - 0.01, hi=g + 0.01), _s("niqe", d, "quality_score", q)]
    out += [_s("niqe", "none", "robustness", 0.4, lo=0.3, hi=0.5), _s("niqe", "none", "mrb_abs_gain", 0.3),
            _s("niqe", "jpeg", "mrb_abs_gain", 0.05, lo=0.01, hi=0.09),
            _s("brisque", "none", "robustness", 0.9), _s("brisque", "none", "robust_abs_gain", 0.5)]
    return out


def test_pareto_ranks_are_layers():
    assert pareto_ranks([(0.1, 0.6), (0.2, 0.5), (0.05, 0.3), (0.3, 0.4)]) == [1, 2, 1, 3]
    assert pareto_ranks([(float("nan"), 0.5), (0.1, 0.1)]) == [None, 1]


def test_defences_ranked_by_gain_at_the_floor():
    rows = [r for r in defence_table(_summary(), floor=0.5) if r["metric"] == "niqe"]
    assert [r["name"] for r in rows] == ["none", "jpeg", "resize", "median", "blur"]
    assert [r["rank"] for r in rows] == [None, 1, 2, 3, None]
    blur = rows[-1]
    assert blur["meets_floor"] is False and "below the floor 0.5" in blur["note"] and blur["pareto_rank"] == 1
    assert rows[1]["gain_ci_low"] == pytest.approx(0.09) and rows[1]["pareto_rank"] == 1
    assert {r["name"]: r["pareto_rank"] for r in rows}["median"] == 2  # jpeg dominates it
    lower = defence_table(_summary(), floor=0.3)
    assert [r["name"] for r in lower if r["rank"] == 1] == ["blur"]


def test_metrics_ranked_by_robustness_with_compression():
    rows = metric_table(_summary())
    assert [(r["metric"], r["rank"]) for r in rows] == [("brisque", 1), ("niqe", 2)]
    niqe = next(r for r in rows if r["metric"] == "niqe")
    assert niqe["robustness_ci_low"] == 0.3 and niqe["compression"] == "jpeg"
    assert niqe["compressed_gain"] == 0.05 and niqe["compressed_gain_ci_high"] == 0.09
    assert [r["table"] for r in leaderboard(_summary())].count("metrics") == 2
