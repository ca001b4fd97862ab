"""Start-up times: how long until the CLI answers and the GUI's first window is painted.

Each case runs in a fresh interpreter, several times; the table gives the median (and the
slowest) wall-clock seconds and the median peak memory, beside a bare ``python -c pass``
(the interpreter's own start-up on this machine, under its current load)::

    python bench/bench_startup.py            # 5 runs of each case
    python bench/bench_startup.py --runs 9
    python bench/bench_startup.py --root /tmp/old-checkout   # the same cases in another checkout

Cases: ``main.py --help``, ``main.py run --help``, ``main.py list --refresh`` (builds
the catalogue: imports every component, builds no model), ``main.py list`` (reads the
catalogue the previous case kept; see ``engine/cli/catalogue_cache.py``), and the GUI: from process start to the main window's first
paint event (offscreen platform, a throwaway settings file).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GUI_FIRST_PAINT = r"""
import os, sys, time
from gui.app import create_application
app = create_application([])
from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
from gui.main_window import MainWindow

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not getattr(self, "seen", False):
            self.seen = True
            print(f"painted {time.time() - float(os.environ['BENCH_T0']):.4f}", flush=True)
            os._exit(0)  # the paint is what is measured; no shutdown
        return False

settings = QSettings(os.path.join(sys.argv[1], "settings.ini"), QSettings.Format.IniFormat)
window = MainWindow(settings)
watch = FirstPaint()
window.installEventFilter(watch)
window.show()
QTimer.singleShot(120_000, lambda: os._exit(3))
app.exec()
"""


def _run(cmd: list[str], env: dict[str, str], root: Path) -> tuple[float, float]:
    """Seconds to the answer (for the GUI: to the first paint, as it reports) and peak MB."""
    t0 = time.time()
    env = {**env, "BENCH_T0": repr(t0), "PYTHONPATH": str(root)}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.time() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    for line in out.splitlines():
        if line.startswith("painted "):
            seconds = float(line.split()[1])
    return seconds, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout whose main.py and gui/ are timed")
    args = p.parse_args(argv)
    py = sys.executable
    tmp = tempfile.mkdtemp(prefix="bench-startup-")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1",
           "IQA_LAB_CACHE": os.path.join(tmp, "cache")}
    cases = [("python -c pass", [py, "-c", "pass"]),
             ("main.py --help", [py, "main.py", "--help"]),
             ("main.py run --help", [py, "main.py", "run", "--help"]),
             ("main.py list --refresh (builds the catalogue)", [py, "main.py", "list", "--refresh"]),
             ("main.py list (kept catalogue)", [py, "main.py", "list"]),
             ("GUI: first painted window", [py, "-c", GUI_FIRST_PAINT, tmp])]
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{args.runs} runs per case, cases interleaved; {args.root}")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in cases}
    for _ in range(args.runs):  # interleaved: a burst of load hits every case alike
        for name, cmd in cases:
            results[name].append(_run(cmd, env, args.root))
    print("| case | median s | slowest s | median peak MB |\n|---|---:|---:|---:|")
    for name, _ in cases:
        secs = [s for s, _ in results[name]]
        mem = [m for _, m in results[name]]
        print(f"| {name} | {statistics.median(secs):.2f} | {max(secs):.2f} | {statistics.median(mem):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
