"""GUI test fixtures: a main window with throwaway settings, real photos, the real runner."""
from __future__ import annotations

from pathlib import Path

import pytest

from gui.qt_env import prepare_qt_environment
from engine.run.identity import content_items

prepare_qt_environment()  # before pytest-qt creates the QApplication

#: few, small steps so a whole run takes seconds on a shared CPU
FAST_ATTACK = {"ifgsm": {"checked": True, "preset": "", "params": {"iters": 3, "alpha": 1 / 255}}}
DEFENCES = {"jpeg": {"checked": True, "preset": "", "params": {}},
            "median-blur": {"checked": True, "preset": "", "params": {}}}


@pytest.fixture(scope="session")
def metric_entries():
    from gui.catalog import scan_metrics

    return scan_metrics()


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, metric_entries, qapp):
    from gui.gc_guard import install
    from gui.style import apply_style

    apply_style(qapp)
    install(qapp)  # as the app does: no Qt object is collected in a worker thread
    windows = []

    def make(settings, resize: bool = True):
        from gui.main_window import MainWindow

        w = MainWindow(settings, scan=False)
        w.panel.set_metrics(metric_entries)
        if resize:
            w.resize(1280, 800)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.shutdown()
        qtbot.waitUntil(lambda w=w: not w.controller.running, timeout=60_000)
        w.close()
        w.deleteLater()


def configure(window, folder: Path, out: Path, *, attack=None, defences=None, save_images=True) -> None:
    """Open ``folder`` and set a small niqe experiment writing to ``out``."""
    window.images.set_folder(str(folder))
    window.images.wait_thumbnails()
    window.panel.set_state({"metrics": ["niqe"], "attacks": attack or FAST_ATTACK,
                           "defences": DEFENCES if defences is None else defences, "seed": 3, "device": "cpu",
                           "save_images": save_images, "adaptive": False, "output": str(out)})


@pytest.fixture
def one_photo(photo_folder, tmp_path) -> Path:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "coffee.png").write_bytes((photo_folder / "coffee.png").read_bytes())
    return folder


def assert_stopped_with_dialog(qtbot, window, text: str) -> None:
    """The run ended, and a dialog the user must answer says ``text``."""
    qtbot.waitUntil(lambda: window.runs.error_dialog is not None and window.runs.error_dialog.isVisible(),
                    timeout=5_000)
    assert text in window.runs.error_dialog.text()
    assert not window.panel.running and window.run_action.isEnabled()


def run_to_end(qtbot, window, timeout: int = 120_000) -> None:
    window.start_run()
    assert window.controller.running, window.log.entries[-3:]
    qtbot.waitUntil(lambda: not window.controller.running and not window.panel.running, timeout=timeout)


def fake_row(item, defence: str = "none", **extra) -> dict:
    """A result row of ``item`` with made-up scores (for tests that need no real run)."""
    return {"image_name": item.image_name, "metric": item.metric.label, "attack": item.attack.name,
            "attack_preset": item.attack.preset_label, "defence": defence, "defence_preset": "default",
            "defence_label": defence, "item_id": item.id, "clear": 10.0, "attacked": 5.0, "defended-clear": 10.0,
            "defended-attacked": 6.0, "nonpurified_abs_gain": 0.2, "robust_abs_gain": 0.15, "quality_score": 0.9,
            "attack_time": 1.0, "defence_time": 0.0, "attack_gained": True, "error": None, **extra}


def fake_store(path: Path, exp, done: int, **row_extra) -> None:
    """Store ``exp`` with its first ``done`` items finished (made-up rows and steps)."""
    from engine.store.db import ResultStore

    path.parent.mkdir(parents=True, exist_ok=True)
    with ResultStore(path) as store:
        items = content_items(exp)
        store.open_experiment(exp, {}, items)
        for item in items[:done]:
            store.write_item(exp.id, item, [fake_row(item, **row_extra)], clean_score=10.0, attacked_score=5.0,
                             steps=[{"iteration": 0, "score": 10.0}, {"iteration": 1, "score": 5.0}], seconds=2.0)


def record_threads(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that records the thread of every call; returns
    the list the threads are appended to (the real function still runs)."""
    import threading

    threads: list = []
    real = getattr(module, name)

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return threads
