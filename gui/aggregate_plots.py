"""Aggregate plots over result rows: gain left per defence, and quality vs gain left.

Both group rows by defence label (defence + preset, so a preset sweep gives one bar and
one point per preset), optionally restricted to one metric and one attack.
"""
from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

ALL = "all"


def _num(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def defence_label(row: dict[str, Any]) -> str:
    if row.get("defence_label"):
        return str(row["defence_label"])
    d, p = row.get("defence", "?"), row.get("defence_preset")
    return d if not p or p == "default" else f"{d}[{p}]"


def group_by_defence(rows: list[dict[str, Any]], metric: str = ALL, attack: str = ALL
                     ) -> OrderedDict[str, dict[str, list[float]]]:
    """defence label → {score name: values} for rows without errors; ``none`` first."""
    groups: OrderedDict[str, dict[str, list[float]]] = OrderedDict()
    for r in rows:
        if r.get("error") or r.get("defence") is None:
            continue
        if metric != ALL and r.get("metric") != metric:
            continue
        if attack != ALL and r.get("attack") != attack:
            continue
        g = groups.setdefault(defence_label(r), defaultdict(list))
        for key in ("robust_abs_gain", "quality_score", "nonpurified_abs_gain"):
            v = _num(r.get(key))
            if v is not None:
                g[key].append(v)
    if "none" in groups:
        groups.move_to_end("none", last=False)
    return groups


class _FilteredPlot(QWidget):
    """A plot with metric/attack filters, redrawn at most twice a second."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("metric"))
        self.metric = QComboBox()
        self.metric.addItem(ALL)
        bar.addWidget(self.metric)
        bar.addWidget(QLabel("attack"))
        self.attack = QComboBox()
        self.attack.addItem(ALL)
        bar.addWidget(self.attack)
        self.note = QLabel()
        self.note.setObjectName("plot_note")
        bar.addWidget(self.note, 1)
        lay.addLayout(bar)
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        lay.addWidget(self.plot, 1)
        self.metric.currentIndexChanged.connect(self.redraw)
        self.attack.currentIndexChanged.connect(self.redraw)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self.redraw)

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self._sync_filter(self.metric, sorted({str(r["metric"]) for r in rows if r.get("metric")}))
        self._sync_filter(self.attack, sorted({str(r["attack"]) for r in rows if r.get("attack")}))
        if not self._timer.isActive():
            self._timer.start()

    def _sync_filter(self, box: QComboBox, values: list[str]) -> None:
        have = {box.itemText(i) for i in range(box.count())}
        for v in values:
            if v not in have:
                box.addItem(v)

    def groups(self) -> OrderedDict[str, dict[str, list[float]]]:
        return group_by_defence(self.rows, self.metric.currentText() or ALL, self.attack.currentText() or ALL)

    def redraw(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class GainPerDefencePlot(_FilteredPlot):
    """Horizontal bars: mean gain left after each defence, one dot per image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot.setLabel("bottom", "gain left  |M(x) − M(D(xₐ))| / range   (lower is better)")
        self.plot.setToolTip("gain the attack keeps after the defence, normalised by the metric's range")
        self.plot.getAxis("left").setWidth(120)
        self.plot.setMouseEnabled(x=True, y=False)
        self.means: dict[str, float] = {}

    def redraw(self) -> None:
        self.plot.clear()
        groups = self.groups()
        labels = [lb for lb, g in groups.items() if g.get("robust_abs_gain")]
        self.means = {lb: float(np.mean(groups[lb]["robust_abs_gain"])) for lb in labels}
        if not labels:
            self.note.setText("no finished rows yet")
            return
        self.note.setText("bar: mean over images · dots: images")
        ys = np.arange(len(labels))
        means = np.array([self.means[lb] for lb in labels])
        brushes = [pg.mkBrush("#9aa0a6") if lb == "none" else pg.mkBrush("#4a7fc1") for lb in labels]
        self.plot.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.6, width=means, brushes=brushes,
                                          pen=pg.mkPen("#2b4f7e")))
        rng = np.random.default_rng(0)
        for y, lb in zip(ys, labels):
            vals = np.array(groups[lb]["robust_abs_gain"])
            jitter = rng.uniform(-0.18, 0.18, size=len(vals))
            self.plot.plot(vals, y + jitter, pen=None, symbol="o", symbolSize=5,
                           symbolBrush=(20, 20, 20, 150), symbolPen=None)
        self.plot.getAxis("left").setTicks([[(float(y), lb) for y, lb in zip(ys, labels)]])
        self.plot.setYRange(-0.6, len(labels) - 0.4, padding=0)
        self.plot.invertY(True)
        top = max(max(groups[lb]["robust_abs_gain"]) for lb in labels)  # a mean never exceeds it
        self.plot.setXRange(0, top * 1.1 if top > 0 else 1, padding=0)


class QualityGainPlot(_FilteredPlot):
    """Scatter: quality (x vs D(xₐ)) against gain left, one point per defence (and preset)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot.setLabel("bottom", "gain left (lower is better)")
        self.plot.setLabel("left", "quality (higher is better)")
        self.plot.setToolTip("quality = (SSIM + PSNR/80) / 2 between the clean image and D(xₐ); "
                             "gain left = |M(x) − M(D(xₐ))| / range")
        self.points: dict[str, tuple[float, float]] = {}

    def redraw(self) -> None:
        self.plot.clear()
        groups = self.groups()
        self.points = {}
        for lb, g in groups.items():
            if g.get("robust_abs_gain") and g.get("quality_score"):
                self.points[lb] = (float(np.mean(g["robust_abs_gain"])), float(np.mean(g["quality_score"])))
        if not self.points:
            self.note.setText("no finished rows yet")
            return
        self.note.setText("one point per defence and preset · best: top left")
        xs = np.array([p[0] for p in self.points.values()])
        ys = np.array([p[1] for p in self.points.values()])
        brushes = [pg.mkBrush("#9aa0a6") if lb == "none" else pg.mkBrush("#d1495b") for lb in self.points]
        self.plot.addItem(pg.ScatterPlotItem(xs, ys, size=10, brush=brushes, pen=pg.mkPen("#222222")))
        for lb, (x, y) in self.points.items():
            text = pg.TextItem(lb, color="#202124", anchor=(-0.08, 0.5))
            text.setPos(x, y)
            self.plot.addItem(text)
        dx = max(float(xs.max() - xs.min()), 1e-3)
        dy = max(float(ys.max() - ys.min()), 1e-3)
        self.plot.setXRange(max(0.0, float(xs.min()) - 0.1 * dx), float(xs.max()) + 0.45 * dx, padding=0)
        self.plot.setYRange(float(ys.min()) - 0.15 * dy, float(ys.max()) + 0.15 * dy, padding=0)
