"""Tools → Train robust metric: trains in a worker thread, plots loss, SROCC/PLCC and the
validation attack's gain per epoch, and adds NAME:weights=FILE to the experiment's metrics."""
from __future__ import annotations

import math
import threading

import pytest

from tests.engine.training import _tiny_metric
from tests.engine.training._iqa_data import build_dataset

pytestmark = pytest.mark.gui


@pytest.fixture
def tiny_metric():
    _tiny_metric.register()
    yield
    _tiny_metric.unregister()


def test_robust_training_plots_each_epoch_and_offers_the_metric(qtbot, make_window, settings, tmp_path,
                                                                  tiny_metric):
    folder = tmp_path / "set"
    build_dataset(folder, size=32, kinds=("blur",))
    w = make_window(settings)
    d = w.tools.open_robust_training()
    assert d.isVisible() and w.train_robust_action.text() == "Train robust metric…"
    d.folder.setText(str(folder))
    d.metric_box.setCurrentText(_tiny_metric.NAME)
    d.method.setCurrentIndex(d.method.findData("nt"))
    d.epochs.setValue(2)
    d.batch.setValue(4)
    d.crop.setValue(32)
    d.val_attack_images.setValue(2)
    d.device.setCurrentIndex(d.device.findData("cpu"))
    out = tmp_path / "w" / "robust.pt"
    d.out.setText(str(out))

    in_gui_thread = []
    redraw = d._redraw

    def recording_redraw():
        in_gui_thread.append(threading.current_thread() is threading.main_thread())
        redraw()

    d._redraw = recording_redraw
    assert d.start()
    assert not d.start_button.isEnabled() and d.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not d.running, timeout=300_000)

    assert d.epochs_seen == [1, 2], d.status.text()
    assert len(in_gui_thread) >= 3 and all(in_gui_thread)
    xs, losses = d.loss_curve.getData()
    assert list(xs) == [1, 2] and all(math.isfinite(v) and v > 0 for v in losses)
    _, sroccs = d.srocc_curve.getData()
    assert all(-1 <= v <= 1 for v in sroccs)
    _, gains = d.gain_curve.getData()
    assert len(gains) == 2 and all(v >= 0 for v in gains)
    assert d.progress.format() == "done" and out.is_file() and d.use_button.isEnabled()

    d.use_button.click()
    spec = f"{_tiny_metric.NAME}:weights={out.resolve()}"
    assert spec in w.panel.checked_metrics()
    from engine.spec.experiment import ComponentSpec

    assert ComponentSpec.parse(spec).label.startswith(f"{_tiny_metric.NAME}+NT(")  # its own row


def test_bad_settings_say_so_without_starting(qtbot, make_window, settings, tmp_path):
    w = make_window(settings)
    d = w.tools.open_robust_training()
    d.folder.setText(str(tmp_path / "missing"))
    assert not d.start() and "not a folder" in d.status.text() and not d.running
