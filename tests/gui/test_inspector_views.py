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
    qtbot.waitUntil(lambda: not ins._diff_pending, timeout=2_000)   # drawn on the next event-loop turn
    assert ins.abs_bar.isVisible() and not ins.colorbar.isVisible()
    m = int(np.abs(attacked.astype(int) - clean.astype(int)).max())
    assert ins.abs_bar.levels() == pytest.approx((0.0, m))  # white = the largest |Δ|
    ins.gain.setValue(4)
    qtbot.waitUntil(lambda: not ins._diff_pending, timeout=2_000)
    assert ins.abs_bar.levels() == pytest.approx((0.0, 255 / 4))
    ins.mode.setCurrentIndex(1)
    qtbot.waitUntil(lambda: not ins._diff_pending, timeout=2_000)
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
    ins.swipe_slider.setValue(50)
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
