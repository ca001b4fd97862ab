"""The bugs seen in the first pass, each reproduced through the window."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.spec.experiment import Experiment
from engine.store.db import ResultStore
from tests.gui.conftest import configure, fake_store, run_to_end
from engine.run.identity import content_items

TWO_STEPS = {"ifgsm": {"checked": True, "preset": "", "params": {"iters": 2, "alpha": 1 / 255}}}


def _auto_output(w, tmp_path: Path) -> None:
    """Default outputs under tmp_path (never the user's data folder)."""
    w.session.default_output = lambda folder: str(tmp_path / "auto" / (Path(folder).name if folder else "x"))


def _exp(folder: Path, **kw) -> Experiment:
    from engine.spec.folders import find_images

    images = find_images(folder)
    return Experiment(images=images, root=str(Path(folder).resolve()), metrics=["niqe"], attacks=["ifgsm"], **kw)


@pytest.fixture
def two_photos(photo_folder, tmp_path) -> Path:
    """Two small photos: a run takes a few seconds."""
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("coffee.png", "chelsea.png"):
        (folder / name).write_bytes((photo_folder / name).read_bytes())
    return folder


def test_a_new_run_follows_its_own_items_and_the_combo_shows_it(qtbot, make_window, settings, two_photos, tmp_path):
    w = make_window(settings)
    configure(w, two_photos, tmp_path / "out", attack=TWO_STEPS, defences={})
    run_to_end(qtbot, w)
    first, first_ids = w.exp_id, set(w.session.items)
    assert w.display.shown_item in first_ids and w.inspector.images is not None
    w.panel.attacks.set_choice("ifgsm", checked=True, params={"iters": 3, "alpha": 1 / 255})
    w.start_run()
    # with "follow run" on, the previous run's image is gone as soon as the new run starts…
    assert w.inspector.images is None and w.display.shown_item is None
    # …and the combo names the new experiment whose rows the table shows
    assert w.exp_combo.currentData() == w.exp_id != first
    qtbot.waitUntil(lambda: not w.controller.running and not w.panel.running, timeout=120_000)
    assert w.display.shown_item in set(w.session.items) - first_ids and w.inspector.images is not None
    assert w.exp_combo.currentData() == w.exp_id and w.exp_combo.count() == 2
    # the log says each thing once: no "finished: finished"
    assert w.log.contains("run finished: ") and not w.log.contains("finished: finished")
    # choosing the first experiment in the combo shows its rows
    w.exp_combo.activated.emit(w.exp_combo.findData(first))
    assert w.exp_id == first and {r["item_id"] for r in w.model.rows} == first_ids


def test_opening_another_folder_clears_inspector_curves_and_table(qtbot, make_window, settings, two_photos,
                                                                  photo_folder, tmp_path):
    w = make_window(settings)
    configure(w, two_photos, tmp_path / "out", attack=TWO_STEPS, defences={})
    run_to_end(qtbot, w)
    assert w.model.rowCount() == 2 and w.curves.attacks()
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.png").write_bytes((photo_folder / "coffee.png").read_bytes())
    w.images.list.setCurrentRow(1)          # a background read of the old folder's item starts…
    w.images.set_folder(str(other))         # …and the folder changes before it answers
    qtbot.wait(500)
    w.pool.wait()
    assert w.inspector.images is None and w.display.shown_item is None
    assert w.model.rowCount() == 0 and w.curves.attacks() == [] and w.exp_combo.count() == 0
    assert w.status_store.text() == "no store" and w.images.paths() == [str((other / "a.png").resolve())]


def test_a_new_folder_writes_to_its_own_output_not_the_opened_store(qtbot, make_window, settings, photo_folder,
                                                                    tmp_path):
    w = make_window(settings)
    _auto_output(w, tmp_path)
    old_store = tmp_path / "old" / "results.sqlite"
    fake_store(old_store, _exp(photo_folder), done=3)
    assert w.open_store(old_store)
    assert w.session.folder == str(photo_folder.resolve())
    other = tmp_path / "second"
    other.mkdir()
    (other / "b.png").write_bytes((photo_folder / "chelsea.png").read_bytes())
    w.images.set_folder(str(other))
    w.panel.set_state({"metrics": ["niqe"], "attacks": TWO_STEPS, "defences": {}, "device": "cpu"})
    run_to_end(qtbot, w)
    assert w.store_path == tmp_path / "auto" / "second" / "results.sqlite"
    with ResultStore(old_store, readonly=True) as store:
        assert len(store.experiments()) == 1  # nothing written into the old folder's store


def test_an_image_with_a_failed_and_a_finished_item_shows_both_with_the_full_text(qtbot, make_window, settings,
                                                                                  photo_folder, tmp_path):
    from engine.core.events import ItemFailed, ItemFinished, ItemStarted
    from tests.gui.conftest import fake_row

    w = make_window(settings)
    _auto_output(w, tmp_path)
    w.images.set_folder(str(photo_folder))
    exp = Experiment(images=w.session.images, root=w.session.folder, metrics=["niqe", "brisque"], attacks=["ifgsm"])
    w.session.begin_run(exp)
    path = exp.images[0]
    ok, bad = [it for it in content_items(exp) if it.image == path]
    message = "metric brisque is unavailable: missing brisque_svm_weights.pth (download it to ~/.cache/…)"
    for ev in (ItemStarted(ok, 1, 6), ItemFinished(ok, [fake_row(ok)], []), ItemStarted(bad, 2, 6),
               ItemFailed(bad, message, "metric")):
        w.runs._on_events([ev])
    item = w.images._item(path)
    assert w.images.status(path) == "partial"
    assert "1/2 done · 1 failed" in item.text()
    assert message in item.toolTip() and "niqe · ifgsm: done" in item.toolTip()
    w.session.end_run()


def test_relaunch_restores_the_store_and_the_statuses(qtbot, make_window, settings, two_photos, tmp_path):
    w = make_window(settings)
    configure(w, two_photos, tmp_path / "out", attack=TWO_STEPS, defences={})
    run_to_end(qtbot, w)
    rows = w.model.rowCount()
    w.close()
    again = make_window(settings, resize=False)
    assert again.store_path == w.store_path and again.exp_id == w.exp_id
    assert again.model.rowCount() == rows
    assert all(again.images.status(p) == "done" for p in again.images.paths())


def test_samples_with_stored_results_show_them(qtbot, make_window, settings, tmp_path):
    from gui.main_window import SAMPLES_DIR

    w = make_window(settings)
    _auto_output(w, tmp_path)
    w.panel.set_state({"output": ""})
    fake_store(tmp_path / "auto" / "samples" / "results.sqlite", _exp(SAMPLES_DIR), done=2)
    w.load_samples()
    assert w.model.rowCount() == 2
    assert sum(w.images.status(p) == "done" for p in w.images.paths()) == 2
    assert not w.log.contains("press Run")


def test_filter_counts_the_rows_shown_and_a_thumbnail_selects_its_row(qtbot, make_window, settings, photo_folder,
                                                                      tmp_path):
    w = make_window(settings)
    _auto_output(w, tmp_path)
    fake_store(tmp_path / "auto" / "photos" / "results.sqlite", _exp(photo_folder), done=3)
    w.images.set_folder(str(photo_folder))
    assert w.rows_label.text() == "3 rows"
    w.filter.setText("coffee")
    assert w.proxy.rowCount() == 1 and w.rows_label.text() == "1 of 3 rows"
    w.filter.setText("")
    chelsea = next(p for p in w.images.paths() if p.endswith("chelsea.png"))
    w.images.list.setCurrentItem(w.images._item(chelsea))
    assert w.results.selected_row()["image_name"] == "chelsea.png"


def test_curve_axes_stay_readable(qtbot, make_window, settings):
    from gui.curves import LiveCurves

    curves = LiveCurves()
    qtbot.addWidget(curves)
    curves.resize(500, 300)
    curves.show()
    curves.show_steps("a.png", "niqe", 6.0, {"ifgsm": [(0, 5.0)]})
    qtbot.wait(50)
    (x0, x1), _ = curves.plot.viewRange()
    assert -0.2 <= x0 <= 0 and 1 <= x1 <= 1.2          # not −200…400
    for axis in ("left", "bottom"):
        assert not curves.plot.getAxis(axis).autoSIPrefix
    # the clean score is named above the plot, never on a label cut at the plot's edge
    assert getattr(curves.clean_line, "label", None) is None and "clean 6" in curves.legend_label.text()
    w = make_window(settings)
    d = w.tools.open_fcn_training()
    for plot in (d.loss_plot, d.ssim_plot):
        assert not plot.getAxis("bottom").autoSIPrefix and not plot.getAxis("left").autoSIPrefix


def test_export_names_the_experiment_and_accepts_a_new_folder(qtbot, make_window, settings, photo_folder, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    w = make_window(settings)
    _auto_output(w, tmp_path)
    exp = _exp(photo_folder)
    fake_store(tmp_path / "auto" / "photos" / "results.sqlite", exp, done=1)
    w.images.set_folder(str(photo_folder))
    assert w.exp_combo.currentData() == w.exp_id == exp.id
    asked = []

    def exec_and_pick(dialog):
        asked.append((dialog.fileMode(), dialog.acceptMode()))
        dialog.setDirectory(str(tmp_path))
        dialog.selectFile("new-csv")
        return True

    QFileDialog.exec = exec_and_pick  # the real dialog, answered without a display
    try:
        w.files.choose_export_csv()
    finally:
        del QFileDialog.exec
    assert asked == [(QFileDialog.FileMode.AnyFile, QFileDialog.AcceptMode.AcceptSave)], w.log.entries[-3:]
    assert not w.log.errors, w.log.entries[-3:]
    assert (tmp_path / "new-csv" / "raw.csv").exists()
    assert w.log.contains(f"exported experiment {exp.id[:8]} (incomplete: 1/3 items)")


def test_the_parameter_editor_shows_the_ticked_attack(qtbot, make_window, settings):
    w = make_window(settings)
    picker = w.panel.attacks
    picker.set_state({"pgd": {"checked": True}})
    assert picker.current_name() == "pgd" and "pgd" in picker.editor_title.text()
    from PySide6.QtCore import Qt

    picker._item("mifgsm").setCheckState(Qt.CheckState.Checked)
    assert picker.current_name() == "mifgsm"


def test_zero_meaning_automatic_is_shown_in_words(qtbot):
    from engine.defences import DEFENCES
    from gui.param_editor import ParamForm

    form = ParamForm(DEFENCES.get("bilateral").param_specs())
    qtbot.addWidget(form)
    box = form.editor("sigma_space")
    assert box.text() == "0 = from k (OpenCV's rule)"
    box.setValue(2.0)
    assert box.text().startswith("2.0") and form.values()["sigma_space"] == pytest.approx(2.0)
