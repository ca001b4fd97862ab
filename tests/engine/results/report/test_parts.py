"""Report pieces on hand-made rows: Pareto front, strip selection, HTML escaping."""
from __future__ import annotations

import math

from engine.evaluation.tables import summarise
from engine.results.report.data import ReportData
from engine.results.report.html import render_page
from engine.results.report.plots import pareto_front, pareto_points
from engine.results.report.strips import select_cases

EVIL = '<img src=x onerror="alert(1)">'


def _row(item: str, defence: str, gain: float, **kw) -> dict:
    base = {"item_id": item, "image_name": f"{item}.png", "metric": "niqe", "attack": "ifgsm",
            "attack_preset": "default", "defence": defence, "defence_preset": "default",
            "defence_label": defence, "robust_abs_gain": gain, "nonpurified_abs_gain": kw.pop("attack_gain", gain),
            "quality_score": kw.pop("quality", 0.5), "clear": 5.0, "attacked": 4.0, "error": None}
    base.update(kw)
    return base


def test_pareto_front_keeps_only_undominated_points():
    pts = [(0.10, 0.60), (0.20, 0.50), (0.05, 0.30), (0.10, 0.60), (0.30, 0.90), (math.nan, 1.0)]
    # (0.2, 0.5) is beaten by (0.1, 0.6); equal points do not dominate each other
    assert pareto_front(pts) == [True, False, True, True, True, False]


def test_pareto_points_use_the_all_attacks_block():
    rows = [_row("a", "none", 0.8, quality=0.9), _row("a", "jpeg", 0.1, quality=0.6),
            _row("b", "none", 0.4, quality=0.7, attack="fgsm"), _row("b", "jpeg", 0.3, quality=0.4, attack="fgsm")]
    pts = {lab: (g, q) for lab, g, q in pareto_points(summarise(rows))["niqe"]}
    assert math.isclose(pts["none"][0], 0.6) and math.isclose(pts["none"][1], 0.8)
    assert math.isclose(pts["jpeg"][0], 0.2) and math.isclose(pts["jpeg"][1], 0.5)


def test_strip_cases_rank_by_gain_and_skip_failed_defences():
    rows = [_row("a", "none", 0.2), _row("a", "jpeg", 0.15), _row("a", "blur", 0.01),
            _row("b", "none", 0.9), _row("b", "jpeg", 0.5), _row("b", "blur", math.nan, error="blur failed"),
            _row("c", "none", 0.5), _row("c", "jpeg", 0.05)]
    attack, defence = select_cases(rows, k=2)
    assert [c.attack_row["item_id"] for c in attack] == ["b", "c"]
    assert attack[0].row["defence"] == "jpeg"  # the failed blur row is never shown as "best"
    assert [(c.row["item_id"], c.row["defence"]) for c in defence] == [("b", "jpeg"), ("a", "jpeg")]


def test_user_strings_are_escaped():
    rows = [_row("a", "none", 0.3, image_name=EVIL), _row("a", EVIL, 0.1, defence_label=EVIL)]
    data = ReportData(experiment_id="x1", spec={"seed": 3, "metrics": [{"name": "niqe"}], "images": [EVIL]},
                      manifest={"versions": {"tool": EVIL}}, rows=rows,
                      items=[{"item_id": "a", "status": "failed", "error": EVIL, "image_name": EVIL}],
                      summary=summarise(rows), total=2, done=1, failed=1)
    page = render_page(data, figures=[], strips=[], strips_note=EVIL, files=[EVIL],
                       store_name=EVIL, tool_version="0", generated="now")
    assert EVIL not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "1 failed" in page and 'data-missing="0"' in page


def test_pareto_plot_draws_the_intervals_as_error_bars():
    from engine.results.report.plots import pareto_plot

    rows = [_row(i, d, g + 0.01 * k, quality=q + 0.02 * k) for k, i in enumerate("abcd")
            for d, g, q in (("none", 0.8, 0.9), ("jpeg", 0.1, 0.6))]
    summary = summarise(rows)
    fig = pareto_plot(summary)
    bars = [c for c in fig.axes[0].collections if type(c).__name__ == "LineCollection"]
    (s,) = [r for r in summary if r["attack"] == "total" and r["defence"] == "jpeg" and r["score"] == "robust_abs_gain"]
    xs = sorted(float(v) for b in bars for seg in b.get_segments() for v in seg[:, 0] if seg[0, 1] == seg[1, 1])
    assert any(math.isclose(x, s["ci_low"]) for x in xs) and any(math.isclose(x, s["ci_high"]) for x in xs)


def test_study_section_shows_reported_beside_measured():
    from engine.evaluation.study_compare import compare_study

    rows = [_row(i, d, g, quality=q) for i in "abc" for d, g, q in (("none", 0.5, 0.7), ("flip", 0.07, 0.16))]
    summary = summarise(rows)
    data = ReportData(experiment_id="x1", spec={"seed": 0, "metrics": [{"name": "niqe"}], "study": "paper"},
                      manifest={}, rows=rows, items=[], summary=summary, total=3, done=3, failed=0,
                      study=compare_study("paper", summary))
    page = render_page(data, figures=[], strips=[], strips_note="", files=[], store_name="s", tool_version="0",
                       generated="now")
    section = page.split('<section id="study">')[1].split("</section>")[0]
    none = section.split('data-defence="none"')[1].split("</tr>")[0]
    assert "0.81" in none and "0.5" in none and 'class="num diff-big"' in none  # gain 0.5 vs 0.81
    flip = section.split('data-defence="flip"')[1].split("</tr>")[0]
    assert flip.count('class="num diff-ok"') == 2
    assert '<a href="#study">' in page
