"""Tools → Train FCN filter: trains in a worker thread, plots per epoch, stops and
resumes, and hands the checkpoint to the experiment as the ``fcn`` defence."""
from __future__ import annotations

import math
import threading

import pytest

from engine.training.fcn_trainer import last_checkpoint_path

pytestmark = pytest.mark.gui

FAST_ATTACK = "ifgsm:iters=1:eps=4/255"


def _configure(dialog, out, epochs: int) -> None:
    dialog.metric_box.setCurrentText("niqe")
    dialog.attack.setText(FAST_ATTACK)
    dialog.epochs.setValue(epochs)
    dialog.crop.setValue(64)
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.out.setText(str(out))


def test_training_plots_each_epoch_and_offers_the_checkpoint(qtbot, make_window, settings, photo_folder, tmp_path):
    w = make_window(settings)
    w.images.set_folder(str(photo_folder))
    d = w.tools.open_fcn_training()
    assert d.isVisible() and d.folder.text() == str(photo_folder)
    assert d.metric_box.findText("niqe") >= 0  # the window's ready metrics are offered
    out = tmp_path / "fcn" / "filter.pt"
    _configure(d, out, epochs=2)

    in_gui_thread = []
    redraw = d._redraw

    def recording_redraw():  # the plots are redrawn by the slots that receive the worker's signals
        in_gui_thread.append(threading.current_thread() is threading.main_thread())
        redraw()

    d._redraw = recording_redraw
    assert d.start()
    assert not d.start_button.isEnabled() and d.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not d.running, timeout=300_000)

    assert d.epochs_seen == [1, 2]
    assert len(in_gui_thread) >= 3 and all(in_gui_thread)  # start + history + 2 epochs
    xs, ys = d.loss_curve.getData()
    assert list(xs) == [1, 2] and all(math.isfinite(v) and v > 0 for v in ys)
    _, ssims = d.ssim_curve.getData()
    assert all(-1 <= v <= 1 for v in ssims)
    assert d.progress.format() == "done" and "best validation SSIM" in d.status.text()
    assert out.is_file() and d.use_button.isEnabled() and d.start_button.isEnabled()

    d.use_button.click()
    fcn = [s for s in w.panel.defences.specs() if s.name == "fcn"]
    assert len(fcn) == 1 and fcn[0].params["checkpoint"] == str(out.resolve())
    from engine.defences import DEFENCES

    assert DEFENCES.get("fcn").availability({"checkpoint": fcn[0].params["checkpoint"]}).ok


def test_stop_keeps_the_run_and_start_resumes_it(qtbot, make_window, settings, photo_folder, tmp_path):
    w = make_window(settings)
    w.images.set_folder(str(photo_folder))
    d = w.tools.open_fcn_training()
    out = tmp_path / "fcn.pt"
    _configure(d, out, epochs=500)
    assert d.start()
    qtbot.waitUntil(lambda: len(d.epochs_seen) >= 1, timeout=300_000)
    d.stop_button.click()
    qtbot.waitUntil(lambda: not d.running, timeout=120_000)
    stopped_at = d.epochs_seen[-1]
    assert stopped_at < 500 and d.progress.format() == "stopped"
    assert last_checkpoint_path(out).is_file() and out.is_file()

    d.epochs.setValue(stopped_at + 2)
    assert d.start()
    qtbot.waitUntil(lambda: not d.running, timeout=300_000)
    # the earlier epochs come back from the saved run, then training continues after them
    assert d.epochs_seen == list(range(1, stopped_at + 3))
    assert d.progress.format() == "done"


def test_bad_settings_are_reported_in_the_dialog(qtbot, make_window, settings, tmp_path):
    w = make_window(settings)
    d = w.tools.open_fcn_training()
    d.folder.setText(str(tmp_path / "missing"))
    assert not d.start() and "not a folder" in d.status.text()
    empty = tmp_path / "empty"
    empty.mkdir()
    d.folder.setText(str(empty))
    _configure(d, tmp_path / "fcn.pt", epochs=1)
    assert d.start()
    qtbot.waitUntil(lambda: not d.running, timeout=60_000)
    assert d.status.text().startswith("training failed:") and d.progress.format() == "failed"
    assert not d.use_button.isEnabled() and d.start_button.isEnabled()
