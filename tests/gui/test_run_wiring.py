"""Run options and messages wired at merge: budget calibration in the worker, the CLI's
error words (and a dialog) for a run that stops, the leaderboard tab and loading a study."""
from __future__ import annotations

import json
from pathlib import Path

from tests.gui.conftest import assert_stopped_with_dialog, configure, run_to_end

ONE_STEP = {"fgsm": {"checked": True, "preset": "", "params": {}}}


def test_a_budget_is_calibrated_in_the_worker_and_the_rows_record_it(qtbot, make_window, settings, one_photo,
                                                                     tmp_path):
    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=ONE_STEP, defences={})
    w.panel.options.budget.setCurrentIndex(w.panel.options.budget.findData("linf-4"))
    assert w.panel.build_experiment(w.session.images, w.session.folder).budget == "linf-4"
    run_to_end(qtbot, w)
    presets = json.loads((tmp_path / "out" / "budgets.json").read_text())
    assert presets  # the calibrated preset is kept next to the store
    rows = [r for r in w.model.rows if not r.get("error")]
    assert rows and all(r["budget"] == "linf-4" for r in rows)
    # the session follows the calibrated experiment: the combo and the rows agree
    assert w.session.experiment is not None and w.session.experiment.budget == "linf-4"
    assert w.session.exp_id == w.session.experiment.id
    assert all(r["budget_reached"] <= 4 / 255 + 1e-6 and r["budget_met"] for r in rows)
    assert w.log.contains("calibrating the attacks to the budget linf-4")


def test_a_run_that_stops_gives_the_clis_message_and_a_dialog(qtbot, make_window, settings, one_photo, tmp_path,
                                                               monkeypatch):
    import engine.run.driver
    from engine.store.db import StoreCorrupt

    def broken(*a, **kw):
        raise StoreCorrupt(f"{tmp_path / 'out' / 'results.sqlite'}: the store is damaged; run check --salvage")
        yield  # pragma: no cover

    monkeypatch.setattr(engine.run.driver, "run_experiment", broken)
    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=ONE_STEP, defences={})
    run_to_end(qtbot, w)
    assert w.log.contains("the store is damaged; run check --salvage")
    assert not w.log.contains("Traceback")
    assert_stopped_with_dialog(qtbot, w, "check --salvage")


def test_the_leaderboard_tab_shows_the_finished_experiment(qtbot, make_window, settings, one_photo, tmp_path):
    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=ONE_STEP,
              defences={"jpeg": {"checked": True, "preset": "", "params": {}}})
    run_to_end(qtbot, w)
    qtbot.waitUntil(lambda: bool(w.leaderboard.rows), timeout=60_000)
    ranked = {str(r["name"]) for r in w.leaderboard.rows if r["table"] == "defences"}
    assert {"none", "jpeg"} <= ranked
    assert w.tabs.indexOf(w.leaderboard) >= 0


def test_loading_a_study_ticks_its_grid_and_edits_forget_it(qtbot, make_window, settings, one_photo, tmp_path):
    import json

    from engine.spec.experiment import ComponentSpec

    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=ONE_STEP, defences={})
    assert set(w.study_actions) >= {"paper", "guardians-lite"}
    w.study_actions["guardians-lite"].trigger()
    study = json.loads((Path(__file__).resolve().parents[2] / "engine" / "spec" / "studies" / "guardians-lite.json").read_text())
    exp = w.panel.build_experiment(w.session.images, w.session.folder)
    assert exp.study == "guardians-lite" and exp.budget == study.get("budget")
    assert {a.key for a in exp.attacks} == {ComponentSpec.parse(a).key for a in study["attacks"]}
    assert {d.key for d in exp.defences} == {ComponentSpec.parse(d).key for d in study["defences"]}
    assert exp.metrics == [ComponentSpec("niqe")]  # the ticked metric stays
    assert w.log.contains("study guardians-lite")
    w.panel.defences.set_choice("jpeg", checked=False)
    assert w.panel.build_experiment(w.session.images, w.session.folder).study is None
