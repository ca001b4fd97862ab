"""Worst GUI event-loop stalls: a real run, a 5000-image folder, a 50,000-row table.

``--large`` also measures (side by side in this process) opening a folder of 5000 small
images (goal: under 2 s, thumbnails lazy) and sorting/filtering 50,000 result rows
(goal: no stall over 100 ms), next to the first pass's QSortFilterProxyModel.

A 5 ms QTimer in the GUI thread records the gap between its ticks while the main window
runs a small real experiment (niqe, I-FGSM, JPEG + median blur on the sample photos) in
its worker thread, drawing live curves, the table and the inspector as events arrive.
A gap well above 5 ms means the GUI thread was blocked (by our slots or by the GIL).

Every entry into the GUI thread is timed, so no slot can be missed: each call the event
loop makes into Python (slots, timers, lambdas, the garbage-collection timer) by a profile
hook (``sys.setprofile``, on that thread only), and each event Qt delivers there (painting,
layout, queued calls, Python or not) by an application event filter. Run is pressed from
the event loop, as a click is, so its own work counts. Each gap over 16 ms (one frame) is
attributed to the Python entries and the Qt deliveries inside it; a gap with neither was
the GIL held by another thread or the OS not scheduling this one.

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen python bench/bench_gui_stall.py [--iters 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for _weights in (ROOT.parent / "shared" / "iqa-weights", Path("/work/shared/iqa-weights")):
    if _weights.is_dir():   # a worktree's parent has no shared/ folder
        os.environ.setdefault("TORCH_HOME", str(_weights))
        break


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10, help="I-FGSM iterations")
    ap.add_argument("--folder", default=str(ROOT / "resources" / "samples"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tick-ms", type=int, default=5)
    ap.add_argument("--baseline", type=float, default=3.0, help="seconds of idle measurement first")
    ap.add_argument("--large", action="store_true", help="also the 5000-image folder and the 50,000-row table")
    ap.add_argument("--no-run", action="store_true", help="skip the real run")
    ap.add_argument("--no-trace", action="store_true",
                    help="measure the gaps without the profile hook and the event filter (they slow every "
                         "Python call and event on the GUI thread; the gaps are then not attributed)")
    args = ap.parse_args()

    from gui.app import create_application

    app = create_application([])
    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer

    from gui.catalog import scan_metrics
    from gui.main_window import MainWindow

    entries = GuiThreadEntries()

    tmp = Path(tempfile.mkdtemp(prefix="iqa-lab-bench-"))
    window = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat), scan=False)
    window.show_metrics(scan_metrics())   # as the app's start-up scan answers
    window.resize(1280, 800)
    window.show()
    window.images.set_folder(args.folder)
    window.images.wait_thumbnails()
    window.pool.wait()   # the start-up's background calls (the warm-up) have answered, as in a used app
    window.panel.set_state({"metrics": ["niqe"],
                            "attacks": {"ifgsm": {"checked": True, "preset": "fine", "params": {"iters": args.iters}}},
                            "defences": {"jpeg": {"checked": True}, "median-blur": {"checked": True}},
                            "seed": 0, "device": args.device, "save_images": True, "output": str(tmp / "out")})
    for _ in range(20):
        app.processEvents()
    if args.large:
        large_folder(app, window, tmp)
        large_table(app, window)
    if args.no_run:
        window.close()
        return 0

    gaps: list[float] = []
    big: list[tuple[float, float]] = []  # (time of tick, gap) for gaps > 25 ms
    clock = QElapsedTimer()
    state = {"last": None}

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if state["last"] is not None:
            gaps.append(now - state["last"])
            if gaps[-1] > 16:
                big.append((now / 1000, gaps[-1]))
        state["last"] = now

    timer = QTimer()
    timer.setInterval(args.tick_ms)
    timer.timeout.connect(tick)
    clock_zero = [0.0]

    # baseline: the same timer with the window idle, for the machine's own scheduling noise
    clock.start()
    timer.start()
    QTimer.singleShot(int(args.baseline * 1000), app.quit)
    app.exec()
    timer.stop()
    idle = sorted(gaps)
    gaps.clear()
    big.clear()
    state["last"] = None
    clock.restart()
    clock_zero[0] = time.perf_counter()

    t0 = time.perf_counter()
    timer.start()
    events = None
    if not args.no_trace:
        entries.install()
        events = QtEvents(app)
    # Run is pressed from the event loop (as a click is), so its own work counts as a gap
    started = []
    QTimer.singleShot(20, lambda: started.append(window.start_run()))
    while not started:
        app.processEvents()
    if not started[0]:
        print("the run did not start:", window.status_run.text(), window.log.entries[-3:])
        return 2
    # quit from the GUI thread (a poll, not a connection to the worker: its signals may
    # only reach GUI-thread objects' methods)
    poll = QTimer()
    poll.setInterval(50)
    poll.timeout.connect(lambda: None if (window.controller.running or window.panel.running) else app.quit())
    poll.start()
    app.exec()  # the real event loop: the timer and every queued slot run here
    # the run's tail: the last queued slots (leaderboard answer, export) still count
    QTimer.singleShot(1500, app.quit)
    app.exec()
    if events is not None:
        entries.uninstall()
        events.uninstall()
    poll.stop()
    seconds = time.perf_counter() - t0
    timer.stop()
    for _ in range(5):
        app.processEvents()

    gaps.sort()
    n = len(gaps)
    worst = gaps[-1] if gaps else float("nan")
    p99 = gaps[int(0.99 * (n - 1))] if gaps else float("nan")
    median = gaps[n // 2] if gaps else float("nan")
    print(f"run: {len(window.images.paths())} images, niqe, ifgsm fine ×{args.iters}, jpeg + median-blur, "
          f"{window.model.rowCount()} rows in {seconds:.1f} s on {args.device}; "
          f"curve points {window.curves.points_received}, redraws {window.curves.redraws}")
    print(f"event-loop gaps with a {args.tick_ms} ms timer during the run: n={n} median={median:.1f} ms "
          f"p99={p99:.1f} ms worst={worst:.1f} ms  (goal: worst ≤ 16 ms, one frame)")
    if idle:
        print(f"idle baseline ({args.baseline:.0f} s, no run): p99={idle[int(0.99 * (len(idle) - 1))]:.1f} ms "
              f"worst={idle[-1]:.1f} ms; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("GUI-thread Python entries during the run (every one, by a profile hook), the 12 longest: "
          "max / total ms")
    for name, times in sorted(entries.times.items(), key=lambda kv: -max(kv[1]))[:12]:
        print(f"  {name:<60} n={len(times):<5d} max={1000 * max(times):6.1f}  total={1000 * sum(times):7.1f}")
    print("gaps > 16 ms: (s into the run, ms) → the Python entries over 5 ms inside it | the Qt events "
          "whose delivery took over 5 ms inside it (event type → receiver)")
    for t, g in big[-16:]:
        lo, hi = clock_zero[0] + t - g / 1000 - 0.002, clock_zero[0] + t
        inside = [f"{n} {1000 * d:.0f} ms" for n, s0, d in entries.long if lo <= s0 <= hi]
        qt = [f"{n} {1000 * d:.0f} ms" for n, s0, d in (events.long if events else []) if lo <= s0 <= hi]
        print(f"  {t:6.2f} s  {g:5.0f} ms  " + ("; ".join(inside) if inside else "no Python entry")
              + "  |  " + ("; ".join(qt[:4]) if qt else "no long Qt event"))
    window.close()
    return 0 if worst <= 16 else 1


class QtEvents:
    """Times every event Qt delivers on the GUI thread, Python or not (painting, layout,
    queued calls): an application event filter notes when each delivery begins; a
    delivery lasts until the next begins or the event loop returns to wait (an upper
    bound: nested deliveries are counted in the outer one). The filter's own Python call
    is left out of :class:`GuiThreadEntries` by name."""

    def __init__(self, app) -> None:
        from PySide6.QtCore import QAbstractEventDispatcher, QObject

        self.long: list[tuple[str, float, float]] = []   # (event → receiver, start, seconds) over 5 ms
        self._current: tuple[str, float] | None = None

        outer = self

        class _Filter(QObject):
            def eventFilter(self, obj, event):
                outer._begin(f"{event.type().name} → {type(obj).__name__}")
                return False

        self._filter = _Filter()
        app.installEventFilter(self._filter)
        self._dispatcher = QAbstractEventDispatcher.instance()
        self._dispatcher.aboutToBlock.connect(self._idle)
        self._app = app

    def _begin(self, name: str) -> None:
        now = time.perf_counter()
        self._end(now)
        self._current = (name, now)

    def _end(self, now: float) -> None:
        if self._current is not None:
            name, start = self._current
            if now - start > 0.005:
                self.long.append((name, start, now - start))
            self._current = None

    def _idle(self) -> None:
        self._end(time.perf_counter())

    def uninstall(self) -> None:
        self._app.removeEventFilter(self._filter)
        self._dispatcher.aboutToBlock.disconnect(self._idle)


class GuiThreadEntries:
    """Times every entry into Python on the GUI thread.

    A profile hook (``sys.setprofile``) is set on this thread only: a Python frame called
    at depth 1 is an entry (the event loop, C++, called a slot, a timer's function, a
    lambda); its duration is how long it held the event loop. Nothing is named in
    advance, so no slot can be missed.
    """

    #: the benchmark's own instruments (the event filter, the tick), not the app's work
    SKIP = ("QtEvents.", "main.<locals>.tick", "_Filter.eventFilter")

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.long: list[tuple[str, float, float]] = []   # (name, start, seconds) of entries over 5 ms
        self._depth = 0
        self._start = 0.0
        self._name = ""

    def install(self) -> None:
        self._depth = 0
        sys.setprofile(self._hook)

    def uninstall(self) -> None:
        sys.setprofile(None)

    def _hook(self, frame, event, _arg) -> None:
        if event == "call":
            self._depth += 1
            if self._depth == 1:
                code = frame.f_code
                self._name = f"{code.co_qualname} ({Path(code.co_filename).name}:{code.co_firstlineno})"
                self._start = time.perf_counter()
        elif event == "return":
            if self._depth == 1 and not self._name.startswith(self.SKIP):
                d = time.perf_counter() - self._start
                self.times.setdefault(self._name, []).append(d)
                if d > 0.005:
                    self.long.append((self._name, self._start, d))
            self._depth = max(0, self._depth - 1)


def _worst_gap(app, seconds: float) -> float:
    """Run the event loop for ``seconds`` with a 5 ms timer; the worst gap between ticks."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    clock, gaps, last = QElapsedTimer(), [], [None]

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if last[0] is not None:
            gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec()
    timer.stop()
    return max(gaps) if gaps else float("nan")


def large_folder(app, window, tmp: Path, n: int = 5000) -> None:
    """Open a folder of ``n`` small PNGs: time to a usable list, then the worst stall while
    the thumbnails in view load lazily."""
    from PIL import Image

    folder = tmp / "large"
    folder.mkdir()
    im = Image.new("RGB", (96, 64), (120, 60, 30))
    for i in range(n):
        im.save(folder / f"img{i:05d}.png")
    t0 = time.perf_counter()
    window.open_folder(str(folder))
    app.processEvents()
    opened = time.perf_counter() - t0
    worst = _worst_gap(app, 2.0)
    loaded = len(window.images._thumbs)
    print(f"folder of {n} images: opened in {opened:.2f} s (goal < 2 s); thumbnails loaded lazily: {loaded}; "
          f"worst event-loop gap while they load: {worst:.1f} ms")


def _rows(n: int) -> list[dict]:
    import random

    rnd = random.Random(0)
    defences = ["none", "jpeg", "median-blur", "bilateral", "diffpure"]
    return [{"image_name": f"img{i // 5:05d}.png", "metric": "niqe", "attack": "ifgsm", "attack_preset": "",
             "defence": defences[i % 5], "defence_label": defences[i % 5], "item_id": f"it{i // 5}",
             "clear": rnd.uniform(2, 10), "attacked": rnd.uniform(1, 9), "defended-attacked": rnd.uniform(1, 9),
             "robust_abs_gain": rnd.random(), "nonpurified_abs_gain": rnd.random(), "quality_score": rnd.random(),
             "attack_time": rnd.random(), "flag": "", "error": None} for i in range(n)]


def large_table(app, window, n: int = 50_000) -> None:
    """Sort and filter ``n`` rows: each is one blocking call in the GUI thread, so its
    duration is the stall. The first pass's QSortFilterProxyModel (lessThan in Python)
    is measured side by side."""
    from PySide6.QtCore import QSortFilterProxyModel, Qt

    from gui.results_model import RAW_ROLE, ResultsModel, _sort_key

    rows = _rows(n)
    t0 = time.perf_counter()
    window.results.set_rows(rows)
    app.processEvents()
    load = time.perf_counter() - t0
    col = window.model.columns.index("robust_abs_gain")

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        app.processEvents()
        return 1000 * (time.perf_counter() - t)

    ours = {"sort": timed(lambda: window.table.sortByColumn(col, Qt.SortOrder.DescendingOrder)),
            "filter": timed(lambda: window.results.filter.setText("jpeg")),
            "filter off": timed(lambda: window.results.filter.setText(""))}

    class OldProxy(QSortFilterProxyModel):
        def lessThan(self, left, right):  # the first pass: one Python call per comparison
            return _sort_key(left.data(RAW_ROLE)) < _sort_key(right.data(RAW_ROLE))

    model = ResultsModel()
    model.set_rows(rows)
    old = OldProxy()
    old.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    old.setFilterKeyColumn(-1)
    old.setSourceModel(model)
    theirs = {"sort": timed(lambda: old.sort(col, Qt.SortOrder.DescendingOrder)),
              "filter": timed(lambda: old.setFilterFixedString("jpeg")),
              "filter off": timed(lambda: old.setFilterFixedString(""))}
    print(f"table of {n} rows: loaded in {load:.2f} s; " + ", ".join(
        f"{k} {ours[k]:.0f} ms (QSortFilterProxyModel {theirs[k]:.0f} ms, ×{theirs[k] / max(ours[k], 1e-3):.1f})"
        for k in ours) + "  (goal: each < 100 ms)")


if __name__ == "__main__":
    sys.exit(main())
