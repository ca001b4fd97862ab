"""The metric list shows what runs here first, and only that by default (issue 22, item 6)."""
from __future__ import annotations


def test_ready_only_lists_the_metrics_that_run_here(qtbot, metric_entries):
    from gui.experiment_panel import ExperimentPanel

    panel = ExperimentPanel()
    qtbot.addWidget(panel)
    panel.set_checked_metrics([])
    panel.set_metrics(metric_entries)
    ready = sorted(e["name"] for e in metric_entries if e["state"] == "ready")
    others = [e["name"] for e in metric_entries if e["state"] != "ready"]
    assert ready and others   # the shared weights hold a few metrics, most need a download
    assert panel.ready_only.isChecked() and sorted(panel.shown_metrics()) == ready
    panel.ready_only.setChecked(False)
    shown = panel.shown_metrics()
    assert len(shown) == len(metric_entries) and sorted(shown[:len(ready)]) == ready   # grouped: ready first
    # a ticked metric that needs a download stays listed with "ready only"
    download = next(e["name"] for e in metric_entries if e["state"] == "needs-download")
    panel.set_checked_metrics([download])
    panel.ready_only.setChecked(True)
    assert sorted(panel.shown_metrics()) == sorted([*ready, download])
