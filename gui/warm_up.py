"""Import at start-up, in the background, what the first run would import on its way.

The first run imports the metric library (pyiqa with scipy and torchvision), the
experiment schema (pydantic) and the leaderboard; imported then, in the worker, it makes
~60,000 long-lived objects that the GUI thread's next garbage collection walks at once
(a 40 ms stall), and the schema's import held the Run button ~100 ms. Imported in the
background after the window shows, they are frozen with the other start-up objects
(:mod:`gui.gc_guard`). No Qt here: :func:`warm_up` is a plain function for a background call.
"""
from __future__ import annotations

import importlib

#: what a run, its plan and its end import that start-up does not
MODULES = ("engine.spec.schema", "engine.run.driver", "engine.run.prepare", "engine.run.identity",
           "engine.store.diskspace", "engine.results.leaderboard", "gui.stored_state", "pyiqa",
           "PIL.PngImagePlugin")


def warm_up(modules: tuple[str, ...] = MODULES) -> list[str]:
    """Import ``modules``; returns those that could not be imported (they are imported,
    or fail with their own message, when a run needs them)."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional library missing here is the run's to report
            missing.append(name)
    return missing
