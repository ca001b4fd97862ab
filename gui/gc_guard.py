"""Python's cyclic garbage collection only on the GUI thread.

The collector runs in whichever thread happens to allocate when a threshold is passed.
When that is a worker thread (a report drawing matplotlib figures, a background image
read) and the garbage holds Qt widgets (a closed window's menus), their C++ destructors
run off the GUI thread and can deadlock with it. :class:`MainThreadGC` turns automatic
collection off and collects from a timer on the GUI thread instead, generation by
generation when the counts pass Python's own thresholds (as calibre does).

A full (generation 2) collection walks every tracked object: with torch, pyiqa, Qt and
pyqtgraph loaded that is over a million objects, a quarter of a second on the GUI thread
(the freeze at the end of every run). :meth:`MainThreadGC.freeze` moves the objects
alive at start-up (modules, classes, the window's widgets: they live as long as the
app) into the permanent generation, so later full collections walk only what was made
since.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class MainThreadGC(QObject):
    """Install once, on the GUI thread: ``MainThreadGC(app)``.

    Args:
        parent: the QApplication (the guard lives as long as it).
        interval_ms: how often the counts are checked.
    """

    def __init__(self, parent: QObject | None = None, interval_ms: int = 100) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.frozen: set[str] = set()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def freeze(self, stage: str = "start-up") -> bool:
        """Exclude every object alive now from later collections (call at start-up, after
        the heavy imports; the young generations are collected first). Once per ``stage``
        and process: frozen objects are never collected, so later windows (tests open
        many) are not frozen with whatever garbage exists then. Returns whether it froze."""
        if stage in self.frozen:
            return False
        self.frozen.add(stage)
        gc.collect(1)
        gc.freeze()
        return True

    def check(self) -> int:
        """Collect the oldest generation whose count passed its threshold; returns it (−1: none)."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.threshold[generation]:
                gc.collect(generation)
                return generation
        return -1


def install(app: QObject) -> MainThreadGC:
    """The guard of ``app`` (created on first call)."""
    guard = getattr(app, "_main_thread_gc", None)
    if guard is None:
        guard = MainThreadGC(app)
        app._main_thread_gc = guard  # type: ignore[attr-defined]
    return guard
