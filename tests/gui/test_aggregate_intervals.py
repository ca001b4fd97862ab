"""Aggregate plots: 95 % error bars over images and grouping by budget."""
import numpy as np
import pyqtgraph as pg

from engine.evaluation.uncertainty import interval_by_image, seed_for
from gui.aggregate_plots import GUI_RESAMPLES, GainPerDefencePlot, QualityGainPlot, group_by_defence


def _rows(budgets=(None,), n=5):
    rng = np.random.default_rng(0)
    out = []
    for b in budgets:
        for i in range(n):
            for d, g in (("none", 0.8), ("jpeg", 0.1)):
                out.append({"metric": "niqe", "attack": "ifgsm", "defence": d, "defence_preset": "default",
                            "image_name": f"{i}.png", "budget": b, "robust_abs_gain": g + rng.uniform(0, 0.1),
                            "quality_score": 0.6 + rng.uniform(0, 0.05), "error": None})
    return out


def _bars(plot):
    return [it for it in plot.plot.getPlotItem().items if isinstance(it, pg.ErrorBarItem)]


def test_gain_plot_draws_the_image_bootstrap_interval(qtbot):
    w = GainPerDefencePlot()
    qtbot.addWidget(w)
    rows = _rows()
    w.set_rows(rows)
    w.redraw()
    vals = [r["robust_abs_gain"] for r in rows if r["defence"] == "jpeg"]
    iv = interval_by_image(vals, [r["image_name"] for r in rows if r["defence"] == "jpeg"], seed_for("robust_abs_gain"),
                           n_boot=GUI_RESAMPLES)
    assert w.intervals["jpeg"] == (iv.low, iv.high) and iv.low < np.mean(vals) < iv.high
    (bar,) = _bars(w)
    assert np.allclose(bar.opts["x"] - bar.opts["left"], [w.intervals["none"][0], w.intervals["jpeg"][0]])
    w.set_rows([r for r in rows if r["image_name"] in ("0.png", "1.png")])  # 2 images: no interval
    w.redraw()
    assert w.intervals == {} and not _bars(w)


def test_budgets_get_their_own_points_and_a_filter(qtbot):
    rows = _rows(budgets=("linf-4", "linf-8"))
    groups = group_by_defence(rows)
    assert list(groups) == ["none @ linf-4", "none @ linf-8", "jpeg @ linf-4", "jpeg @ linf-8"]
    w = QualityGainPlot()
    qtbot.addWidget(w)
    w.set_rows(rows)
    w.budget.setCurrentText("linf-8")
    w.redraw()
    assert set(w.points) == {"none", "jpeg"} and all(gi and qi for gi, qi in w.intervals.values())
    assert len(_bars(w)) == 2
