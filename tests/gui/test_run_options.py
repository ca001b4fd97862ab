"""Run options (batch size, back end), the plan preview, flags, columns and help."""
from __future__ import annotations

import json

from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from tests.gui.conftest import assert_stopped_with_dialog, configure, fake_store, run_to_end

ONE_STEP = {"ifgsm": {"checked": True, "preset": "", "params": {"iters": 1, "alpha": 1 / 255}}}


def test_batch_size_and_back_end_reach_the_experiment_and_worker(qtbot, make_window, settings, one_photo, tmp_path):
    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=ONE_STEP, defences={})
    w.panel.options.batch_size.setValue(0)
    assert w.panel.build_experiment(w.session.images, w.session.folder).batch_size == "auto"
    w.panel.options.batch_size.setValue(4)
    assert w.panel.build_experiment(w.session.images, w.session.folder).batch_size == 4
    assert not w.panel.options.ray_address.isEnabled()
    w.panel.options.backend.setCurrentIndex(w.panel.options.backend.findData("ray"))
    assert w.panel.options.ray_address.isEnabled()
    w.panel.options.ray_address.setText("127.0.0.1:1")
    w.panel.options.ray_workers.setValue(2)
    assert w.panel.options.backend_options() == {"name": "ray", "address": "127.0.0.1:1", "workers": 2}
    state = w.panel.state()
    w.panel.set_state({**state, "backend": "local"})
    w.panel.set_state(state)
    assert w.panel.options.backend_options()["name"] == "ray" and w.panel.options.ray_workers.value() == 2


def test_a_back_end_that_cannot_start_is_a_clear_message(qtbot, make_window, settings, one_photo, tmp_path,
                                                         monkeypatch):
    import threading

    from engine.run import backends

    built_in = []

    def failing(name="local", **kw):
        built_in.append(threading.current_thread() is threading.main_thread())
        raise backends.BackendError(f"cannot reach the Ray cluster at {kw.get('address')}")

    monkeypatch.setattr(backends, "make_backend", failing)
    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=ONE_STEP, defences={})
    w.panel.options.backend.setCurrentIndex(w.panel.options.backend.findData("ray"))
    w.panel.options.ray_address.setText("10.0.0.9:6379")
    run_to_end(qtbot, w)
    assert built_in == [False]  # built in the worker thread, never on the GUI thread
    assert w.log.contains("the back end could not start: cannot reach the Ray cluster at 10.0.0.9:6379")
    assert_stopped_with_dialog(qtbot, w, "10.0.0.9:6379")


def test_unavailable_components_are_listed_before_anything_starts(qtbot, make_window, settings, one_photo, tmp_path):
    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=ONE_STEP,
              defences={"fcn": {"checked": True, "preset": "", "params": {"checkpoint": str(tmp_path / "no.pt")}},
                        "jpeg": {"checked": True}})
    assert not w.start_run()
    assert not w.controller.running and not (tmp_path / "out" / "results.sqlite").exists()
    qtbot.waitUntil(lambda: w.runs.plan_dialog is not None, timeout=30_000)   # the plan is made in the background
    d = w.runs.plan_dialog
    assert d.isVisible()
    text = d.text.text()
    assert "1 item(s) to compute" in text and "cannot run defence fcn" in text and "no.pt" in text
    assert d.run_button.text() == "Skip unavailable and run" and d.run_button.isEnabled()
    d.run_button.click()
    qtbot.waitUntil(lambda: w.run_count == 1 and not w.controller.running and not w.panel.running, timeout=120_000)
    assert {r["defence"] for r in w.model.rows} == {"none", "jpeg"}
    # the next plan's estimate comes from the stored timing of the same components
    w.panel.defences.set_choice("fcn", checked=False)
    w.panel.options.seed.setValue(9)
    w.runs.preview().wait()
    plan = w.runs.plan
    assert plan.seconds is not None and plan.seconds > 0 and plan.timed_from == 1


def test_an_attack_that_fails_to_gain_or_passes_the_bounds_is_flagged(qtbot, make_window, settings, one_photo,
                                                                       tmp_path):
    w = make_window(settings)
    w.session.default_output = lambda folder: str(tmp_path / "auto")
    exp = Experiment(images=find_images(one_photo), root=str(one_photo.resolve()), metrics=["brisque"],
                     attacks=["ifgsm"])
    fake_store(tmp_path / "auto" / "results.sqlite", exp, done=1, clear=30.0, attacked=-40.0)
    w.images.set_folder(str(one_photo))
    assert w.model.rows[0]["flag"] == "past bounds"
    col = w.model.columns.index("flag")
    assert w.model.data(w.model.index(0, col)) == "past bounds"
    qtbot.waitUntil(lambda: w.inspector.flag.isVisible(), timeout=10_000)
    assert "past the metric's best bound -10.61" in w.inspector.flag.text()


def test_headers_in_words_with_formulas_and_a_remembered_column_chooser(qtbot, make_window, settings, tmp_path,
                                                                        one_photo):
    from PySide6.QtCore import Qt

    from engine.core.labels import SCORE_TITLES
    from gui.results_view import ResultsView

    w = make_window(settings)
    m = w.model
    header = {k: m.headerData(i, Qt.Orientation.Horizontal) for i, k in enumerate(m.columns)}
    tips = {k: m.headerData(i, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole) for i, k in enumerate(m.columns)}
    assert header["robust_abs_gain"] == SCORE_TITLES["robust_abs_gain"][0] == "remaining gain"
    assert "|M(x) − M(D(xₐ))| / range" in tips["robust_abs_gain"] and "robust_abs_gain" in tips["robust_abs_gain"]
    assert header["clear"] == "clean M(x)" and header["quality_score"] == "quality D(xₐ)"
    assert not any("clear" in h for h in header.values())  # one word for the clean image
    menu = w.results.columns_menu()
    presets = [a.text() for a in menu.actions() if a.text().startswith("preset:")]
    assert presets == [f"preset: {p}" for p in ("summary", "gains", "quality", "pair measures", "timing", "certified", "budget", "all")]
    w.results.set_preset("timing")
    assert set(w.results.shown_columns()) == {"image_name", "metric", "attack", "defence", "attack_time",
                                              "defence_time", "attack_iterations", "iteration_used"}
    w.results.set_column_visible("robust_abs_gain", True)
    assert "robust_abs_gain" in w.results.shown_columns()
    assert json.loads(settings.value("resultColumns"))["preset"] == "timing"
    again = ResultsView(settings)
    qtbot.addWidget(again)
    assert again.preset == "timing" and again.shown_columns() == w.results.shown_columns()


def test_help_pages(qtbot, make_window, settings):
    import torch

    w = make_window(settings)
    page = w.help_pages.show_scores()
    text = page.browser.toPlainText()
    assert "remaining gain" in text and "|M(x) − M(D(xₐ))| / range" in text
    assert "Ctrl+R" in w.help_pages.show_shortcuts().browser.toPlainText()
    assert "Preview plan" in w.help_pages.show_study().browser.toPlainText()
    about = w.help_pages.show_about().browser.toPlainText()
    assert torch.__version__ in about and "pyiqa" in about and "PySide6" in about and "CPU" in about


def test_protocol_combo_reaches_the_experiment_and_a_study_sets_it(qtbot, make_window, settings, one_photo, tmp_path):
    from gui.study_menu import apply_study

    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=ONE_STEP, defences={})
    assert w.panel.build_experiment(w.session.images, w.session.folder).protocol == "lab"  # the default
    w.panel.options.protocol.setCurrentIndex(w.panel.options.protocol.findData("msu"))
    assert w.panel.build_experiment(w.session.images, w.session.folder).protocol == "msu"
    state = w.panel.state()
    assert state["protocol"] == "msu"
    w.panel.set_state({**state, "protocol": "lab"})
    assert w.panel.options.protocol.currentData() == "lab"
    apply_study(w.panel, "guardians-lite")  # MSU's benchmark: MSU's protocol
    assert w.panel.build_experiment(w.session.images, w.session.folder).protocol == "msu"
