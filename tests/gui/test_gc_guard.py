"""Cyclic garbage is collected on the GUI thread, never in a worker thread."""
from __future__ import annotations

import gc
import threading


def test_automatic_collection_is_off_and_the_gui_thread_collects(qtbot, qapp):
    from gui.gc_guard import install

    guard = install(qapp)
    assert install(qapp) is guard and not gc.isenabled()
    collected_in: list[str] = []

    class Cycle:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            collected_in.append(threading.current_thread().name)

    def make_garbage() -> None:  # a worker allocating far past the thresholds
        for _ in range(3 * guard.threshold[0]):
            Cycle()

    worker = threading.Thread(target=make_garbage, name="worker")
    worker.start()
    worker.join()
    assert collected_in == []  # nothing was collected in the worker
    qtbot.waitUntil(lambda: bool(collected_in), timeout=5_000)
    assert set(collected_in) == {threading.main_thread().name}
