"""Start-up: what the first run imports is imported in the background only after the
window's first paint, so that it does not compete with it (issue 19's first-paint goal)."""
from __future__ import annotations

import threading

import gui.main_window as main_window


def test_the_warm_up_starts_after_the_first_paint(qtbot, settings, monkeypatch, qapp):
    started = []

    def recording_warm_up(modules=()):
        started.append(threading.current_thread())
        return []

    monkeypatch.setattr(main_window, "warm_up", recording_warm_up)
    w = main_window.MainWindow(settings, scan=False)
    qtbot.addWidget(w)
    qtbot.wait(200)            # the event loop runs, but nothing was painted yet
    assert started == []
    w.show()
    qtbot.waitUntil(lambda: bool(started), timeout=10_000)
    assert started[0] is not threading.main_thread()
    w.shutdown()


def test_the_application_hands_the_gil_back_to_the_gui_thread_quickly(qapp):
    """A run's worker thread holds the GIL at most one switch interval at a time."""
    import sys

    from gui.app import GIL_SWITCH_INTERVAL_S, create_application

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        assert create_application([]) is qapp
        assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S <= 0.001
    finally:
        sys.setswitchinterval(before)
