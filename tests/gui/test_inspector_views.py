"""Inspector: colour bar of the amplified difference, blink, swipe, region statistics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gui.image_ops import region_stats, swipe
from gui.inspector import Inspector, InspectorImages


@pytest.fixture
def inspector(qtbot):
    from tests.conftest import photo

    clean = photo("coffee", (64, 64))
    attacked = clean.copy()
    attacked[10:20, 30:40] = np.clip(attacked[10:20, 30:40].astype(int) + 8, 0, 255).astype(np.uint8)
    ins = Inspector()
    qtbot.addWidget(ins)
    ins.show_images(InspectorImages("t", clean, attacked, {"jpeg": clean}, {"jpeg": clean}))
    return ins, clean, attacked


def test_amplified_difference_has_a_scale(qtbot, inspector):
    ins, clean, attacked = inspector
    ins.mode.setCurrentIndex(0)
    qtbot.waitUntil(lambda: not ins._diff_pending, timeout=5_000)   # computed in the background
    assert ins.abs_bar.isVisible() and not ins.colorbar.isVisible()
    m = int(np.abs(attacked.astype(int) - clean.astype(int)).max())
    assert ins.abs_bar.levels() == pytest.approx((0.0, m))  # white = the largest |Δ|
    ins.gain.setValue(4)
    qtbot.waitUntil(lambda: not ins._diff_pending, timeout=5_000)
    assert ins.abs_bar.levels() == pytest.approx((0.0, 255 / 4))
    ins.mode.setCurrentIndex(1)
    qtbot.waitUntil(lambda: not ins._diff_pending, timeout=5_000)
    assert ins.colorbar.isVisible() and not ins.abs_bar.isVisible()


def test_blink_and_swipe_show_clean_and_attacked_in_place(inspector):
    ins, clean, attacked = inspector
    ins.compare.setCurrentIndex(ins.compare.findData("blink"))
    assert ins.blink_timer.isActive()
    assert np.array_equal(ins.items["attacked"].image, attacked)
    ins.blink_step()
    assert np.array_equal(ins.items["attacked"].image, clean)
    ins.blink_step()
    assert np.array_equal(ins.items["attacked"].image, attacked)
    ins.compare.setCurrentIndex(ins.compare.findData("swipe"))
    assert not ins.blink_timer.isActive()
    ins.set_swipe(0.5)
    shown = ins.items["attacked"].image
    assert np.array_equal(shown[:, :32], clean[:, :32]) and np.array_equal(shown[:, 33:], attacked[:, 33:])
    assert np.array_equal(swipe(clean, attacked, 0.0), attacked) and np.array_equal(swipe(clean, attacked, 1), clean)


def test_region_statistics(inspector):
    ins, clean, attacked = inspector
    ins.set_region(30, 10, 10, 10)          # exactly the changed box
    st = ins.region_stats()
    d = attacked[10:20, 30:40].astype(float) - clean[10:20, 30:40].astype(float)
    assert st["pixels"] == 100 and st["mean_abs"] == pytest.approx(np.abs(d).mean())
    assert st["max_abs"] == pytest.approx(np.abs(d).max()) and 0 < st["mean"] <= 8
    assert "region 100 px" in ins.region.text()
    ins.set_region(0, 40, 10, 10)           # an unchanged box
    assert ins.region_stats()["max_abs"] == 0 and math.isinf(ins.region_stats()["psnr"])
    assert region_stats(clean, attacked, 5, 5, 5, 9)["pixels"] == 0


def _view_box(ins) -> tuple[float, float, float, float]:
    (x0, x1), (y0, y1) = ins.plots["clean"].vb.viewRange()
    return x0, x1, y0, y1


def _fits(ins, w: int, h: int) -> bool:
    """The whole image is in view and fills it in one direction (aspect locked)."""
    x0, x1, y0, y1 = _view_box(ins)
    inside = x0 <= 0 and y0 <= 0 and x1 >= w and y1 >= h
    return inside and min(w / (x1 - x0), h / (y1 - y0)) < 1.0 and max(w / (x1 - x0), h / (y1 - y0)) > 0.9


def test_every_new_item_is_fitted_unless_the_user_zoomed(qtbot):
    from tests.conftest import photo

    ins = Inspector()
    qtbot.addWidget(ins)
    ins.resize(700, 500)
    ins.show()
    qtbot.waitExposed(ins)
    clean = photo("astronaut", (96, 128))
    for i in range(10):   # ten items of a run, each shown as it finishes
        att = np.roll(clean, i, axis=1)
        ins.show_images(InspectorImages(f"item {i}", clean, att, {"jpeg": att}, {"jpeg": att}))
        qtbot.wait(5)
    h, w = clean.shape[:2]
    assert _fits(ins, w, h), _view_box(ins)
    for key, plot in ins.plots.items():   # linked: every view shows the whole image
        (x0, x1), (y0, y1) = plot.vb.viewRange()
        assert x0 <= 0 and y0 <= 0 and x1 >= w and y1 >= h and (y1 - y0) < 1.2 * h, key
    # the user zooms in: the next item keeps their view; "fit" brings the whole image back
    ins.plots["clean"].vb.scaleBy((0.25, 0.25))
    ins.plots["clean"].vb.sigRangeChangedManually.emit([True, True])
    zoomed = _view_box(ins)
    ins.show_images(InspectorImages("item 10", clean, clean, {}, {}))
    assert _view_box(ins) == pytest.approx(zoomed)
    ins.fit_button.click()
    assert _fits(ins, w, h)
    # the pixel read-out never reports coordinates outside the image
    assert ins.pixel_text(3, 4).startswith("x=3")


def test_blink_title_is_restored_and_swipe_follows_a_drag_on_the_image(qtbot, inspector):
    from PySide6.QtCore import QPointF

    ins, clean, attacked = inspector
    ins.compare.setCurrentIndex(ins.compare.findData("blink"))
    ins.blink_step()
    assert "clean" in ins.plots["attacked"].titleLabel.text
    ins.compare.setCurrentIndex(ins.compare.findData("side"))
    assert ins.plots["attacked"].titleLabel.text.startswith("attacked")
    ins.compare.setCurrentIndex(ins.compare.findData("swipe"))
    vb = ins.plots["attacked"].vb

    class Drag:   # what pyqtgraph hands a view box for a left-button drag
        def __init__(self, x: float) -> None:
            self.pos = vb.mapViewToScene(QPointF(x, 10))
            self.accepted = False

        def button(self):
            from PySide6.QtCore import Qt
            return Qt.MouseButton.LeftButton

        def accept(self):
            self.accepted = True

        def scenePos(self):
            return self.pos

    before = vb.viewRange()
    ev = Drag(16.0)
    vb.mouseDragEvent(ev)
    assert ev.accepted and ins.swipe_fraction == pytest.approx(0.25, abs=0.02)
    shown = ins.items["attacked"].image
    assert np.array_equal(shown[:, :15], clean[:, :15]) and np.array_equal(shown[:, 17:], attacked[:, 17:])
    assert vb.viewRange() == before            # the drag swiped, it did not pan
    ins.compare.setCurrentIndex(ins.compare.findData("side"))
    assert vb.on_swipe is None and not ins.swipe_line.isVisible()


def test_the_difference_views_are_computed_off_the_gui_thread(qtbot, monkeypatch):
    """A big item's |Δ| and signed Δ (numpy over every pixel) never hold the GUI thread."""
    import threading

    from gui import image_ops
    from tests.gui.conftest import record_threads

    threads = record_threads(monkeypatch, image_ops, "signed_difference")
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    attacked = clean.copy()
    attacked[::2] ^= 3
    ins = Inspector()
    ins.DIFF_IN_BACKGROUND = 96 * 128 - 1   # as for a big item (a small one is computed on the next turn)
    qtbot.addWidget(ins)
    ins.show_images(InspectorImages("t", clean, attacked, {"jpeg": clean}, {"jpeg": attacked}))
    qtbot.waitUntil(lambda: not ins._diff_pending, timeout=5_000)
    ins.mode.setCurrentIndex(ins.mode.findData("signed-defended"))
    qtbot.waitUntil(lambda: not ins._diff_pending, timeout=5_000)
    assert len(threads) == 2 and threading.main_thread() not in threads
    expected = (attacked.astype(np.float32) - clean.astype(np.float32)).mean(axis=2)
    assert np.allclose(ins._diff_signed, expected)             # what arrived is shown
    lo, hi = ins.colorbar.levels()
    assert hi == pytest.approx(float(np.abs(expected).max())) and lo == pytest.approx(-hi)
