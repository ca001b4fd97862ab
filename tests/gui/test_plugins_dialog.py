"""The GUI and plug-ins: Tools → Plug-ins… loads a file and shows what it registered or
its error; the component lists follow; plug-in components (files, installed packages,
a TorchScript metric, IQA_LAB_PLUGINS) run from the GUI like built-ins."""
from __future__ import annotations

import pytest

from engine.plugins import isolated
from engine.store.db import ResultStore
from tests.engine.plugins.conftest import (entry_point_dist, plugin_files, torchscript_file,  # noqa: F401 - fixtures
                                           write_plugin)
from tests.gui.conftest import run_to_end

FAST = {"iters": 2}


@pytest.fixture(autouse=True)
def plugin_isolation(monkeypatch):
    monkeypatch.delenv("IQA_LAB_PLUGINS", raising=False)
    with isolated():
        yield
    import sys

    for mod in [m for m in sys.modules if m.startswith("iqa_lab_test_pkg")]:
        del sys.modules[mod]


def _names(picker) -> list[str]:
    return [picker.list.item(i).data(0x0100) for i in range(picker.list.count())]


def _metric_names(window) -> list[str]:
    lst = window.panel.metrics
    return [lst.item(i).data(0x0100) for i in range(lst.count())]


def _set(window, folder, out, metrics, attacks, defences) -> None:
    window.images.set_folder(str(folder))
    window.images.wait_thumbnails()
    window.panel.set_state({"metrics": metrics, "attacks": attacks, "defences": defences, "seed": 3,
                            "device": "cpu", "save_images": False, "adaptive": False, "output": str(out)})


def test_the_dialog_loads_files_and_the_lists_follow(qtbot, make_window, settings, plugin_files, one_photo,
                                                      tmp_path):
    w = make_window(settings)
    dlg = w.tools.open_plugins()
    assert dlg.isVisible() and dlg.tree.topLevelItemCount() == 0
    for path in plugin_files.values():
        assert dlg.load(path)
    assert dlg.tree.topLevelItemCount() == 3
    rows = {dlg.tree.topLevelItem(i).text(1): dlg.tree.topLevelItem(i).text(0) for i in range(3)}
    assert rows["defence p-tv"] == f"file {plugin_files['defence']}"
    assert "p-ifgsm" in _names(w.panel.attacks) and "p-tv" in _names(w.panel.defences)
    item = w.panel.attacks._item("p-ifgsm")
    assert item.text() == "p-ifgsm  (plug-in)" and str(plugin_files["attack"]) in item.toolTip()
    qtbot.waitUntil(lambda: "p-sharp" in _metric_names(w), timeout=60_000)  # the metric scan runs again
    assert any("loaded plug-in file" in m and "metric p-sharp" in m for _, m in w.log.entries)

    # the parameter editor is built from the plug-in's Params, presets included
    w.panel.defences.select("p-tv")
    assert [w.panel.defences.preset.itemData(i) for i in range(w.panel.defences.preset.count())][1:3] == [
        "light", "strong"]

    _set(w, one_photo, tmp_path / "out", ["p-sharp"], {"p-ifgsm": {"checked": True, "preset": "", "params": FAST}},
         {"p-tv": {"checked": True, "preset": "light", "params": {}}})
    run_to_end(qtbot, w)
    assert w.model.rowCount() == 2 and {r["defence"] for r in w.model.rows} == {"none", "p-tv"}
    assert all(not r.get("error") for r in w.model.rows)
    store = ResultStore(w.store_path, readonly=True)
    assert {p["source"] for p in store.manifest(w.exp_id)["plugins"]} == {str(p) for p in plugin_files.values()}


def test_a_bad_file_shows_its_error_in_the_dialog_and_the_log(qtbot, make_window, settings, tmp_path, one_photo):
    w = make_window(settings)
    dlg = w.tools.open_plugins()
    bad = tmp_path / "bad.py"
    bad.write_text("from engine.api import DEFENCES\n\nraise RuntimeError('broken on purpose')\n")
    before = _names(w.panel.defences)
    assert not dlg.load(bad)
    assert f"{bad}:3: RuntimeError: broken on purpose" in dlg.error.toPlainText()
    assert ("error", f"plug-in {bad}:3: RuntimeError: broken on purpose") in w.log.entries
    assert _names(w.panel.defences) == before and dlg.tree.topLevelItemCount() == 0
    # the built-ins still run
    _set(w, one_photo, tmp_path / "out", ["niqe"], {"ifgsm": {"checked": True, "preset": "", "params": {"iters": 1}}},
         {"jpeg": {"checked": True, "preset": "", "params": {}}})
    run_to_end(qtbot, w)
    assert w.model.rowCount() == 2 and all(not r.get("error") for r in w.model.rows)


def test_installed_and_environment_plugins_are_there_at_start(qtbot, make_window, settings, entry_point_dist,
                                                              tmp_path, monkeypatch):
    folder = tmp_path / "env"
    folder.mkdir()
    good = write_plugin(folder, "defence", "env-tv")
    bad = folder / "broken.py"
    bad.write_text("import nope_not_a_module\n")
    monkeypatch.setenv("IQA_LAB_PLUGINS", f"{good}:{bad}")
    w = make_window(settings)
    assert "ep-ifgsm" in _names(w.panel.attacks) and {"ep-tv", "env-tv"} <= set(_names(w.panel.defences))
    assert any(level == "error" and f"{bad}:1" in m for level, m in w.log.entries)
    dlg = w.tools.open_plugins()
    assert f"{bad}:1: ModuleNotFoundError" in dlg.error.toPlainText()
    labels = {dlg.tree.topLevelItem(i).text(0) for i in range(dlg.tree.topLevelItemCount())}
    assert labels == {"package iqa-lab-test-pkg 1.2", f"file {good}"}


def test_entry_point_components_run_from_the_gui(qtbot, make_window, settings, entry_point_dist, one_photo,
                                                 tmp_path, metric_entries):
    w = make_window(settings)
    w.rescan_metrics()  # make_window lists the session's scan; this one sees the package's metric
    qtbot.waitUntil(lambda: "ep-sharp" in _metric_names(w), timeout=60_000)
    _set(w, one_photo, tmp_path / "out", ["ep-sharp"],
         {"ep-ifgsm": {"checked": True, "preset": "", "params": FAST}},
         {"ep-tv": {"checked": True, "preset": "", "params": {"steps": 3}}})
    run_to_end(qtbot, w)
    assert w.model.rowCount() == 2 and all(not r.get("error") for r in w.model.rows)
    recorded = ResultStore(w.store_path, readonly=True).manifest(w.exp_id)["plugins"]
    assert {(p["source"], p["version"]) for p in recorded} == {("iqa-lab-test-pkg", "1.2")}


def test_a_torchscript_metric_from_the_dialog_is_attacked(qtbot, make_window, settings, torchscript_file,
                                                         one_photo, tmp_path):
    w = make_window(settings)
    dlg = w.tools.open_plugins()
    assert dlg.add_torchscript(tmp_path / "missing.pt") is None and "no such file" in dlg.error.toPlainText()
    spec = dlg.add_torchscript(torchscript_file, lower_better=False, low=0.0, high=1.0)
    assert spec == f"torchscript:path={torchscript_file}:lower_better=0:range=0,1"
    assert spec in _metric_names(w) and spec in w.panel.checked_metrics()
    w.panel.set_checked_metrics([spec])
    w.images.set_folder(str(one_photo))
    w.images.wait_thumbnails()
    w.panel.attacks.set_state({"ifgsm": {"checked": True, "preset": "", "params": {"iters": 2}}})
    w.panel.defences.set_state({"jpeg": {"checked": True, "preset": "", "params": {}}})
    w.panel.options.show_output(str(tmp_path / "out"))
    w.panel.options.outputEdited.emit(str(tmp_path / "out"))
    run_to_end(qtbot, w)
    rows = [r for r in w.model.rows if r["defence"] == "none"]
    assert len(rows) == 1 and rows[0]["attacked"] > rows[0]["clear"]
    [ts] = ResultStore(w.store_path, readonly=True).manifest(w.exp_id)["plugins"]
    assert ts["way"] == "torchscript" and ts["source"] == str(torchscript_file)


def test_metrics_added_with_parameters_survive_the_rescan_after_a_plugin_load(qtbot, make_window, settings,
                                                                             plugin_files):
    w = make_window(settings)
    w.tools.use_robust_metric("linearity:weights=/tmp/robust.pt")
    dlg = w.tools.open_plugins()
    assert dlg.load(plugin_files["metric"])  # the metric list is scanned again
    qtbot.waitUntil(lambda: "p-sharp" in _metric_names(w), timeout=60_000)
    assert "linearity:weights=/tmp/robust.pt" in _metric_names(w)
    assert "linearity:weights=/tmp/robust.pt" in w.panel.checked_metrics()


def test_a_trained_metric_is_listed_as_ready_and_stays_listed_when_unticked(qtbot, make_window, settings):
    from PySide6.QtCore import Qt

    w = make_window(settings)
    spec = "linearity:weights=/tmp/robust.pt"
    w.tools.use_robust_metric(spec)
    assert w.panel.metric_info[spec]["state"] == "ready"
    assert spec in w.panel.checked_metrics()
    w.panel.ready_only.setChecked(True)
    item = next(w.panel.metrics.item(i) for i in range(w.panel.metrics.count())
                if w.panel.metrics.item(i).data(Qt.ItemDataRole.UserRole) == spec)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert spec in w.panel.shown_metrics()
