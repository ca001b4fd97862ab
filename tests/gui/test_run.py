"""A real run through the GUI: live curves, results table, inspector, plots, export, reopen."""
from __future__ import annotations

import csv
import threading

import numpy as np
import pytest

from engine.store.db import ResultStore
from tests.gui.conftest import configure, run_to_end


def test_run_shows_curves_table_and_difference(qtbot, make_window, settings, photo_folder, tmp_path):
    w = make_window(settings)
    configure(w, photo_folder, tmp_path / "out")

    threads = []
    add_point = w.curves.add_point

    def recording_add_point(*args):
        threads.append(threading.current_thread() is threading.main_thread())
        add_point(*args)

    w.curves.add_point = recording_add_point
    run_to_end(qtbot, w)

    # every attack step (3 images × iterations 0..3) reached the curve, in the GUI thread
    assert w.curves.points_received == 12
    assert threads and all(threads)
    qtbot.waitUntil(lambda: len(w.curves.curve_data(w.curves.attacks()[0])[0]) == 4, timeout=5_000)
    xs, ys = w.curves.curve_data(w.curves.attacks()[0])
    assert xs == [0.0, 1.0, 2.0, 3.0] and all(np.isfinite(ys))
    assert w.curves.clean_line.isVisible()

    # table: 3 images × (none, jpeg, median-blur)
    assert w.model.rowCount() == 9
    assert {r["defence"] for r in w.model.rows} == {"none", "jpeg", "median-blur"}
    assert all(w.images.status(p) == "done" for p in w.images.paths())
    store = ResultStore(w.store_path, readonly=True)
    assert len(store.rows(w.exp_id)) == 9

    # inspector: the difference is non-zero exactly where the attack changed the image
    w.inspector.mode.setCurrentIndex(0)
    im = w.inspector.images
    assert im is not None and im.attacked is not None
    changed = np.any(im.attacked != im.clean, axis=2)
    assert changed.any()
    abs_view = w.inspector.shown_arrays()["difference-abs"]
    assert np.all(abs_view.max(axis=2)[changed] > 0) and np.all(abs_view[~changed] == 0)
    w.inspector.mode.setCurrentIndex(1)
    signed = w.inspector.difference()
    expected = (im.attacked.astype(np.float32) - im.clean.astype(np.float32)).mean(axis=2)
    np.testing.assert_allclose(signed, expected)
    assert np.all(signed[~changed] == 0) and np.abs(signed).max() > 0

    # pixel read-out at a changed pixel: the values of each view and the signed difference
    y, x = map(int, np.argwhere(changed)[0])
    text = w.inspector.pixel_text(x, y)
    r, g, b = im.clean[y, x]
    assert f"clean ({r:3d},{g:3d},{b:3d})" in text and f"Δ {expected[y, x]:+.2f}/255" in text

    # selecting a table row shows that image and defence
    proxy_row = next(i for i in range(w.proxy.rowCount())
                     if w.model.row(w.proxy.mapToSource(w.proxy.index(i, 0)).row())["image_name"] == "coffee.png"
                     and w.model.row(w.proxy.mapToSource(w.proxy.index(i, 0)).row())["defence"] == "jpeg")
    w.table.selectRow(proxy_row)
    assert "coffee.png" in w.inspector.title.text()
    assert w.inspector.current_defence() == "jpeg"
    assert w.images.list.currentItem().text().startswith("coffee.png")

    # aggregate plots: one bar and one point per defence
    w.gain_plot.redraw()
    w.quality_plot.redraw()
    assert set(w.gain_plot.means) == {"none", "jpeg", "median-blur"}
    none_gain = np.mean([r["robust_abs_gain"] for r in w.model.rows if r["defence"] == "none"])
    assert w.gain_plot.means["none"] == np.float64(none_gain)
    assert set(w.quality_plot.points) == {"none", "jpeg", "median-blur"}

    # export writes the CLI's CSVs
    raw, summary = w.export_csv(tmp_path / "csv")
    with open(raw, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and {"robust_abs_gain", "defended-attacked", "image_name"} <= set(rows[0])
    with open(summary, newline="") as f:
        srows = list(csv.DictReader(f))
    assert any(r["attack"] == "total" for r in srows)

    saved = w.save_shown_images(tmp_path / "shown")
    assert {p.stem for p in saved} >= {"clean", "attacked"}


def test_reopening_a_store_shows_results_without_recomputing(qtbot, make_window, settings, photo_folder, tmp_path):
    from PySide6.QtCore import QSettings

    w = make_window(settings)
    configure(w, photo_folder, tmp_path / "out")
    run_to_end(qtbot, w)
    store_path, rows_before = w.store_path, [dict(r) for r in w.model.rows]
    mtime = store_path.stat().st_mtime_ns

    other = make_window(QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    assert other.open_store(store_path)
    assert other.run_count == 0 and not other.controller.running
    assert store_path.stat().st_mtime_ns == mtime  # nothing written
    assert other.model.rowCount() == 9
    key = lambda r: (r["image_name"], r["defence"])
    before = {key(r): r["robust_abs_gain"] for r in rows_before}
    after = {key(r): r["robust_abs_gain"] for r in other.model.rows}
    assert after == before
    # images come back from the saved PNGs (read in the background), curves from the stored steps
    qtbot.waitUntil(lambda: other.inspector.images is not None, timeout=30_000)
    im = other.inspector.images
    assert im is not None and im.attacked is not None and im.defended_attacked
    assert other.curves.attacks() and len(other.curves.curve_data(other.curves.attacks()[0])[0]) == 4
    assert all(other.images.status(p) == "done" for p in other.images.paths())


def test_report_action_writes_the_report(qtbot, make_window, settings, photo_folder, tmp_path):
    w = make_window(settings)
    configure(w, photo_folder, tmp_path / "out", defences={"jpeg": {"checked": True}})
    run_to_end(qtbot, w)
    assert w.build_report(tmp_path / "report") is not None
    qtbot.waitUntil(lambda: w.log.contains("report written") or w.log.contains("report failed"), timeout=120_000)
    assert w.log.contains("report written"), w.log.entries[-2:]
    report = tmp_path / "report" / "report.html"
    assert w.log.contains(str(report)), w.log.entries[-2:]  # the log names the page it wrote
    page = report.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "niqe" in page and "jpeg" in page
    assert w.session.exp_id in page  # the window's own experiment, not some other one
    # the report's CSV holds exactly the window's rows: 3 photos × (none, jpeg), same gains
    with open(tmp_path / "report" / "raw.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    key = lambda r: (r["image_name"], r["defence"])
    shown = {key(r): r["robust_abs_gain"] for r in w.model.rows}
    assert len(rows) == len(shown) == 6
    assert {key(r) for r in rows} == set(shown)
    for r in rows:
        assert float(r["robust_abs_gain"]) == pytest.approx(shown[key(r)], rel=1e-6, abs=1e-9)
    pngs = list((tmp_path / "report" / "figures").glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    assert all(f"figures/{p.name}" in page for p in pngs)  # every figure is on the page
