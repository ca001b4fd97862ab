"""Integral Robustness Score: trapezoidal mean of a per-budget score over ε."""
from __future__ import annotations

import math

import pytest

from engine.evaluation.integral_robustness import (
    integral_robustness,
    irs_table,
    preset_eps,
)


def test_trapezoid_over_unequal_steps():
    # R = 1 at ε=2, 0.5 at ε=4, 0 at ε=8 (/255): area = 2·0.75 + 4·0.25 = 2.5 over a span of 6
    pts = [(8 / 255, 0.0), (2 / 255, 1.0), (4 / 255, 0.5)]
    assert integral_robustness(pts) == pytest.approx(2.5 / 6)


def test_constant_curve_and_single_budget_and_nan():
    assert integral_robustness([(0.01, 0.7), (0.03, 0.7), (0.06, 0.7)]) == pytest.approx(0.7)
    assert integral_robustness([(0.01, 0.3)]) == pytest.approx(0.3)
    assert math.isnan(integral_robustness([(0.01, float("nan"))]))


def test_preset_eps_reads_both_spellings():
    assert preset_eps("eps=4/255") == pytest.approx(4 / 255)
    assert preset_eps("alpha=0.001,eps=0.0156863") == pytest.approx(0.0156863)
    assert preset_eps("msu-default") is None


def test_table_groups_per_metric_and_defence_and_skips_totals():
    def row(metric, preset, value, defence="none"):
        return {"metric": metric, "attack": "ifgsm", "attack_preset": preset, "defence": defence,
                "defence_preset": "default", "score": "robustness", "value": value}

    summary = [row("m", "eps=2/255", 1.0), row("m", "eps=4/255", 0.5), row("m", "eps=8/255", 0.0),
               row("m+AT(PGD 4/255)#abc", "eps=2/255", 2.0), row("m+AT(PGD 4/255)#abc", "eps=8/255", 1.0),
               {**row("m", "all", 9.0), "attack": "total"},
               {**row("m", "eps=2/255", 0.3), "score": "quality_score"}]
    got = {r["metric"]: r for r in irs_table(summary)}
    assert got["m"]["irs"] == pytest.approx(2.5 / 6)
    assert got["m"]["eps"] == pytest.approx([2 / 255, 4 / 255, 8 / 255])
    assert got["m+AT(PGD 4/255)#abc"]["irs"] == pytest.approx(1.5)


def test_leaderboard_metric_rows_carry_the_irs_of_their_attack():
    from engine.evaluation.leaderboard import LEADERBOARD_COLUMNS, leaderboard

    def row(preset, score, value):
        return {"metric": "m", "attack": "ifgsm", "attack_preset": preset, "defence": "none",
                "defence_preset": "default", "score": score, "value": value, "count": 3}

    summary = [row(p, s, v) for p, v in (("eps=2/255", 1.0), ("eps=8/255", 0.0))
               for s in ("robustness",)]
    metric_rows = [r for r in leaderboard(summary) if r["table"] == "metrics"]
    assert len(metric_rows) == 2 and all(r["irs"] == pytest.approx(0.5) for r in metric_rows)
    assert "irs" in LEADERBOARD_COLUMNS
