"""Live score curves: metric score per attack iteration for the image in flight.

Points arrive at whatever rate the attack runs; they go into a buffer and the plot is
redrawn by a timer (~15 Hz), so a fast attack never waits for drawing. One curve per
attack; the clean score is a dashed reference line.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22"]


def plain_axes(plot: pg.PlotWidget) -> None:
    """Tick labels in plain numbers: no SI prefix such as "(x0.001)" on either axis."""
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)


class LiveCurves(QWidget):
    """Score-per-iteration plot with throttled redraws.

    Use :meth:`begin` when a new image starts, :meth:`set_clean` with its clean score,
    :meth:`add_point` for every attack step (cheap: appends to a buffer), and
    :meth:`show_steps` to display a finished item's recorded steps.
    """

    REDRAW_MS = 66

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.caption = QLabel("Score per attack iteration — press Run")
        self.caption.setObjectName("curves_caption")
        self.caption.setWordWrap(True)
        lay.addWidget(self.caption)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("curves_plot")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "iteration (or queries)")
        self.plot.setLabel("left", "score")
        plain_axes(self.plot)
        self.plot.enableAutoRange(x=False, y=True)
        self.plot.setXRange(0, 1, padding=0.05)
        self.plot.setMouseEnabled(x=True, y=True)
        self.legend_label = QLabel()
        self.legend_label.setObjectName("curves_legend")
        self.legend_label.setWordWrap(True)
        lay.addWidget(self.legend_label)
        lay.addWidget(self.plot, 1)
        self.clean_line = pg.InfiniteLine(angle=0, movable=False,
                                          pen=pg.mkPen("#555555", width=1.5, style=Qt.PenStyle.DashLine))
        # the clean score's value is in the legend above the plot: a label on the line
        # itself gets cut at the plot's edge
        self.clean_line.setVisible(False)
        self.plot.addItem(self.clean_line, ignoreBounds=False)

        self.clean_score: float | None = None
        self._data: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._dirty = False
        self.points_received = 0
        self.redraws = 0
        self._key: tuple[str, str] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(self.REDRAW_MS)
        self._timer.timeout.connect(self._flush)
        self._timer.start()

    # ---- feeding ---------------------------------------------------------------------------
    def begin(self, image_name: str, metric: str, lower_better: bool | None = None) -> None:
        """Start a new image (curves of the previous image are cleared)."""
        key = (image_name, metric)
        if key == self._key:
            return
        self._key = key
        self.clear()
        hint = "" if lower_better is None else ("  (lower is better)" if lower_better else "  (higher is better)")
        self.caption.setText(f"<span style='color:#1a73e8'>running:</span> <b>{metric}</b> score per iteration "
                             f"on <b>{image_name}</b>{hint}")

    def clear(self) -> None:
        self._data.clear()
        for curve in self._curves.values():
            self.plot.removeItem(curve)
        self._curves.clear()
        self.legend_label.setText("")
        self.clean_line.setVisible(False)
        self._dirty = False
        self.plot.setXRange(0, 1, padding=0.05)
        self.plot.setYRange(0, 1, padding=0.05)   # no y-range left over from another item
        self.plot.enableAutoRange(y=True)

    def set_clean(self, score: float) -> None:
        self.clean_line.setValue(score)
        self.clean_line.setVisible(True)
        self.clean_score = score
        self._update_legend()

    def add_point(self, attack: str, iteration: int, score: float) -> None:
        """A live attack step (counted in :attr:`points_received`)."""
        self._append(attack, iteration, score)
        self.points_received += 1

    def _append(self, attack: str, iteration: float, score: float) -> None:
        xs, ys = self._data[attack]
        if xs and iteration <= xs[-1]:  # an attack restarted (e.g. another preset): new run
            xs.clear()
            ys.clear()
        xs.append(float(iteration))
        ys.append(float(score))
        self._dirty = True

    def show_steps(self, image_name: str, metric: str, clean: float | None,
                   series: dict[str, Iterable[tuple[int, float]]]) -> None:
        """Show recorded curves (a finished item, or a reopened store)."""
        self._key = None
        self.clear()
        self.caption.setText(f"<b>{metric}</b> score per iteration on <b>{image_name}</b> (recorded)")
        if clean is not None:
            self.set_clean(clean)
        for attack, pts in series.items():
            for it, s in pts:
                self._append(attack, it, s)   # recorded, not live: not counted
        self._flush()

    # ---- drawing ---------------------------------------------------------------------------
    def _flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for attack, (xs, ys) in self._data.items():
            curve = self._curves.get(attack)
            if curve is None:
                color = PALETTE[len(self._curves) % len(PALETTE)]
                curve = self.plot.plot([], [], pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5,
                                       symbolBrush=color, symbolPen=None, name=attack)
                self._curves[attack] = curve
                self._update_legend()
            curve.setData(xs, ys)
        self._fit_x()
        self.redraws += 1

    def _fit_x(self) -> None:
        """Iterations 0…last (at least 0…1): a single point never gets a ±200 axis."""
        last = max((xs[-1] for xs, _ in self._data.values() if xs), default=0.0)
        self.plot.setXRange(0, max(1.0, last), padding=0.05)

    def _update_legend(self) -> None:
        parts = []
        for i, attack in enumerate(self._curves):
            color = PALETTE[i % len(PALETTE)]
            parts.append(f"<span style='color:{color}; font-size:14px'>●</span>&nbsp;{attack}")
        if self.clean_line.isVisible():
            parts.append(f"<span style='color:#555555'>- - -</span>&nbsp;clean {self.clean_score:.4g}")
        self.legend_label.setText("&nbsp;&nbsp; ".join(parts))

    def curve_data(self, attack: str) -> tuple[list[float], list[float]]:
        """What the plot shows for ``attack`` (after the last redraw)."""
        curve = self._curves.get(attack)
        if curve is None:
            return [], []
        xs, ys = curve.getData()
        return ([] if xs is None else list(xs)), ([] if ys is None else list(ys))

    def attacks(self) -> list[str]:
        return list(self._curves)
