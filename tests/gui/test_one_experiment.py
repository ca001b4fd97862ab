"""Every panel shows the experiment of the folder shown, or nothing (issue 22, item 2)."""
from __future__ import annotations

from pathlib import Path

from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from tests.gui.conftest import fake_store


def _copy(src: Path, dst: Path, names: list[str]) -> Path:
    dst.mkdir()
    for n in names:
        (dst / n).write_bytes((src / n).read_bytes())
    return dst


def test_after_opening_a_second_folder_every_panel_shows_it_or_nothing(qtbot, make_window, settings,
                                                                       photo_folder, tmp_path):
    w = make_window(settings)
    w.session.default_output = lambda folder: str(tmp_path / "auto" / Path(folder or "x").name)
    a = _copy(photo_folder, tmp_path / "a", ["coffee.png", "chelsea.png"])
    exp = Experiment(images=find_images(a), root=str(a.resolve()), metrics=["niqe"], attacks=["ifgsm"])
    fake_store(tmp_path / "store" / "results.sqlite", exp, done=2)
    assert w.open_store(tmp_path / "store" / "results.sqlite")
    qtbot.waitUntil(lambda: bool(w.leaderboard.rows), timeout=30_000)
    w.panel.progress.start(2, 2)
    w.panel.progress.finish("7 done · 213 s · 5 stored before")   # what the last run left
    w.curves.show_steps("coffee.png", "niqe", 40.0, {"ifgsm": [(0, 40.0), (1, 90.0)]})
    w.images.list.setCurrentRow(1)   # a thumbnail of folder a: its read is in flight…
    w.status_run.setText("cannot start: no images")

    b = _copy(photo_folder, tmp_path / "b", ["astronaut.png"])
    w.images.set_folder(str(b))      # …when another folder opens
    qtbot.wait(300)
    w.pool.wait()
    w.leaderboard.wait()
    qtbot.wait(50)
    # nothing of folder a's experiment is left anywhere
    assert w.exp_id is None and w.model.rowCount() == 0 and w.status_store.text() == "no store"
    assert w.leaderboard.rows == [] and w.leaderboard.table.rowCount() == 0
    assert w.leaderboard.shown_experiment() is None
    assert w.panel.progress.bar.format() == "idle" and w.panel.progress.bar.value() == 0
    assert w.curves.attacks() == []
    (_, _), (_, y1) = w.curves.plot.viewRange()
    assert y1 < 40, "the curve keeps the old item's y-range"
    for name in ("coffee", "chelsea"):
        assert name not in w.inspector.title.text()
    assert "cannot start" not in w.status_run.text()


def test_table_inspector_and_curve_agree_during_and_after_a_run(qtbot, make_window, settings, photo_folder,
                                                                tmp_path):
    from tests.gui.conftest import configure

    w = make_window(settings)
    folder = _copy(photo_folder, tmp_path / "two", ["coffee.png", "chelsea.png"])
    configure(w, folder, tmp_path / "out", attack={"ifgsm": {"checked": True, "preset": "",
                                                              "params": {"iters": 6, "alpha": 1 / 255}}},
              defences={"jpeg": {"checked": True, "preset": "", "params": {}}})
    assert w.start_run(), w.log.entries[-3:]
    s = w.session
    # the first item has finished and is shown while the second runs
    qtbot.waitUntil(lambda: w.display.shown_item is not None
                    and s.current_item not in (None, w.display.shown_item), timeout=120_000)
    shown = s.items[w.display.shown_item]
    assert w.inspector.title.text().startswith("<span") and "last finished" in w.inspector.title.text()
    running = s.items[s.current_item]
    assert "running" in w.curves.caption.text() and running.image_name in w.curves.caption.text()
    assert shown.image_name != running.image_name
    qtbot.waitUntil(lambda: not w.controller.running and not w.panel.running, timeout=120_000)
    qtbot.wait(50)
    # after the run: the table's selected row is the inspector's item and defence, the curve is its curve
    row = w.results.selected_row()
    assert row is not None and row["item_id"] == w.display.shown_item
    assert row["defence_label"] == w.inspector.current_defence() == "jpeg"
    info = s.items[w.display.shown_item]
    assert "last finished" not in w.inspector.title.text() and "running" not in w.curves.caption.text()
    assert info.image_name in w.curves.caption.text()
    # picking another defence in the inspector moves the table's selection with it
    w.inspector.defence.setCurrentText("none")
    assert w.results.selected_row()["defence_label"] == "none"
