"""Quitting during a run: the window goes at once, the worker stops after its attack step
and the store keeps every finished item (issue 22, item 8)."""
from __future__ import annotations

import time

from engine.store.db import ResultStore
from tests.gui.conftest import configure

LONG_ATTACK = {"ifgsm": {"checked": True, "preset": "", "params": {"iters": 400, "alpha": 1 / 255}}}


def test_close_during_a_run_returns_within_two_seconds(qtbot, make_window, settings, one_photo, tmp_path):
    w = make_window(settings)
    configure(w, one_photo, tmp_path / "out", attack=LONG_ATTACK, defences={})
    assert w.start_run()
    qtbot.waitUntil(lambda: w.curves.points_received > 0, timeout=120_000)   # attack steps are arriving
    worker = w.controller.worker
    t0 = time.perf_counter()
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=2_000)
    assert time.perf_counter() - t0 < 2.0
    assert worker.token.cancelled            # the cancel reached the worker at once
    # the worker stops after the attack step in flight; then the window closes for good
    qtbot.waitUntil(lambda: not w.controller.running, timeout=60_000)
    stopped = time.perf_counter() - t0
    qtbot.waitUntil(lambda: w._closing, timeout=5_000)
    assert stopped < 30, stopped
    with ResultStore(w.session.store_path, readonly=True) as store:   # readable, nothing half-written
        assert all(it["status"] != "done" for it in store.items(w.session.exp_id))
