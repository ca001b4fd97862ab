"""Time to the first painted main window, and to closing it during a run.

    QT_QPA_PLATFORM=offscreen python bench/bench_gui_startup.py [--repeat 3]
    xvfb-run -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb python bench/bench_gui_startup.py

First paint: a fresh process (as ``python main.py``) from its start until the main
window's first paint event, measured by the parent process (interpreter start and
imports included). Close: ``window.close()`` during a run (I-FGSM steps arriving) until
the window is hidden, and until the worker has stopped and the window closed for good.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for _weights in (ROOT.parent / "shared" / "iqa-weights", Path("/work/shared/iqa-weights")):
    if _weights.is_dir():
        os.environ.setdefault("TORCH_HOME", str(_weights))
        break


def child_first_paint() -> int:
    """Start the app as main.py does; print when the window first paints, then quit."""
    import tempfile

    from gui.app import create_application

    app = create_application([])
    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer

    from gui.main_window import MainWindow

    tmp = tempfile.mkdtemp(prefix="iqa-lab-start-")
    window = MainWindow(QSettings(os.path.join(tmp, "s.ini"), QSettings.Format.IniFormat))

    class Painted(QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == QEvent.Type.Paint:
                print("painted", flush=True)
                QTimer.singleShot(0, app.quit)
                obj.removeEventFilter(self)
            return False

    watcher = Painted()
    window.installEventFilter(watcher)
    window.show()
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        window.repaint()   # offscreen windows are painted on demand
    app.exec()
    os._exit(0)   # skip the shutdown: only the start is measured


def first_paint(repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--child"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        for line in proc.stdout:
            if line.startswith("painted"):
                out.append(time.perf_counter() - t0)
                break
        proc.wait(60)
    return out


def close_during_run() -> tuple[float, float]:
    import tempfile

    from gui.app import create_application

    app = create_application([])
    from PySide6.QtCore import QSettings

    from gui.catalog import scan_metrics
    from gui.main_window import SAMPLES_DIR, MainWindow

    tmp = Path(tempfile.mkdtemp(prefix="iqa-lab-close-"))
    w = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), scan=False)
    w.show_metrics(scan_metrics())
    w.show()
    w.open_folder(str(SAMPLES_DIR))
    w.panel.set_state({"metrics": ["niqe"], "attacks": {"ifgsm": {"checked": True, "params": {"iters": 400}}},
                       "defences": {"jpeg": {"checked": True}}, "seed": 0, "device": "cpu",
                       "save_images": True, "output": str(tmp / "out")})
    assert w.start_run(), w.log.entries[-3:]
    while w.curves.points_received < 3:
        app.processEvents()
        time.sleep(0.01)
    t0 = time.perf_counter()
    w.close()
    while w.isVisible():
        app.processEvents()
    hidden = time.perf_counter() - t0
    while w.controller.running or not w._closing:
        app.processEvents()
        time.sleep(0.005)
    return hidden, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.child:
        return child_first_paint()
    times = first_paint(args.repeat)
    print(f"first painted window ({os.environ['QT_QPA_PLATFORM']}): "
          + ", ".join(f"{t:.2f} s" for t in times) + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    hidden, stopped = close_during_run()
    print(f"close during a run: window hidden after {1000 * hidden:.0f} ms; worker stopped and window closed "
          f"after {stopped:.2f} s (goal ≤ 2 s); load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
