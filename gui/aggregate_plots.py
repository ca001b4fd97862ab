"""Aggregate plots over result rows: gain left per defence, and quality vs gain left.

Both group rows by defence label (defence + preset, so a preset sweep gives one bar and
one point per preset), optionally restricted to one metric, one attack and one budget;
with rows of several budgets and no budget chosen, each budget gets its own bar/point.
Error bars are the 95 % intervals over images (the summary's seeded bootstrap; none with
fewer than 3 images).
"""
from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gui.elided_label import ElidedLabel

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


NO_BUDGET = "no budget"


def budget_of(row: dict[str, Any]) -> str:
    return str(row.get("budget") or NO_BUDGET)


def group_by_defence(rows: list[dict[str, Any]], metric: str = ALL, attack: str = ALL, budget: str = ALL
                     ) -> OrderedDict[str, dict[str, list[float]]]:
    """defence label → {score name: values, ``score@image``: their images} for rows without
    errors; ``none`` first. Labels get `` @ budget`` when the rows shown have several budgets."""
    groups: OrderedDict[str, dict[str, list[float]]] = OrderedDict()
    keep = [r for r in rows if not (r.get("error") or r.get("defence") is None)
            and (metric == ALL or r.get("metric") == metric) and (attack == ALL or r.get("attack") == attack)
            and (budget == ALL or budget_of(r) == budget)]
    several = len({budget_of(r) for r in keep}) > 1
    for r in keep:
        label = defence_label(r) + (f" @ {budget_of(r)}" if several else "")
        g = groups.setdefault(label, defaultdict(list))
        for key in ("robust_abs_gain", "quality_score", "nonpurified_abs_gain"):
            v = _num(r.get(key))
            if v is not None:
                g[key].append(v)
                g[f"{key}@image"].append(r.get("image_name"))
    for lb in [lb for lb in groups if lb == "none" or lb.startswith("none @ ")][::-1]:
        groups.move_to_end(lb, last=False)
    return groups


GUI_RESAMPLES = 500  # a redraw must not stall the event loop; the CSVs use 2000


def interval(group: dict[str, list], key: str) -> tuple[float, float] | None:
    """The 95 % interval of a group's mean over images, or None (fewer than 3 images)."""
    from engine.evaluation.uncertainty import interval_by_image, seed_for

    iv = interval_by_image(group.get(key, []), group.get(f"{key}@image", []), seed_for(key), n_boot=GUI_RESAMPLES)
    return None if iv.low is None else (iv.low, iv.high)


def _combo() -> QComboBox:
    """A filter drop-down as wide as six characters, whatever its entries (wider on demand)."""
    box = QComboBox()
    box.addItem(ALL)
    box.setMinimumContentsLength(6)
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    return box


class _FilteredPlot(QWidget):
    """A plot with metric/attack filters, redrawn at most twice a second."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("metric"))
        self.metric = _combo()
        bar.addWidget(self.metric)
        bar.addWidget(QLabel("attack"))
        self.attack = _combo()
        bar.addWidget(self.attack)
        bar.addWidget(QLabel("budget"))
        self.budget = _combo()
        bar.addWidget(self.budget)
        self.note = ElidedLabel(min_width=40)   # a long note never widens the window
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
        self.budget.currentIndexChanged.connect(self.redraw)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._redraw_if_shown)
        self._stale = False

    def _redraw_if_shown(self) -> None:
        """Rows arrive all run long: a hidden tab is redrawn when it is shown, not per item
        (the bootstrap intervals are GUI-thread work)."""
        if self.isVisible():
            self._stale = False
            self.redraw()
        else:
            self._stale = True

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.redraw()

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self._sync_filter(self.metric, sorted({str(r["metric"]) for r in rows if r.get("metric")}))
        self._sync_filter(self.attack, sorted({str(r["attack"]) for r in rows if r.get("attack")}))
        self._sync_filter(self.budget, sorted({budget_of(r) for r in rows}))
        if not self._timer.isActive():
            self._timer.start()

    def _sync_filter(self, box: QComboBox, values: list[str]) -> None:
        have = {box.itemText(i) for i in range(box.count())}
        for v in values:
            if v not in have:
                box.addItem(v)

    def groups(self) -> OrderedDict[str, dict[str, list[float]]]:
        return group_by_defence(self.rows, self.metric.currentText() or ALL, self.attack.currentText() or ALL,
                                self.budget.currentText() or ALL)

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
        self.intervals: dict[str, tuple[float, float]] = {}

    def redraw(self) -> None:
        self.plot.clear()
        groups = self.groups()
        labels = [lb for lb, g in groups.items() if g.get("robust_abs_gain")]
        self.means = {lb: float(np.mean(groups[lb]["robust_abs_gain"])) for lb in labels}
        if not labels:
            self.note.setText("no finished rows yet")
            return
        self.note.setText("bar: mean over images · whisker: 95 % interval · dots: images")
        ys = np.arange(len(labels))
        means = np.array([self.means[lb] for lb in labels])
        self.intervals = {lb: iv for lb in labels if (iv := interval(groups[lb], "robust_abs_gain"))}
        brushes = [pg.mkBrush("#9aa0a6") if lb == "none" else pg.mkBrush("#4a7fc1") for lb in labels]
        self.plot.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.6, width=means, brushes=brushes,
                                          pen=pg.mkPen("#2b4f7e")))
        rng = np.random.default_rng(0)
        for y, lb in zip(ys, labels):
            vals = np.array(groups[lb]["robust_abs_gain"])
            jitter = rng.uniform(-0.18, 0.18, size=len(vals))
            self.plot.plot(vals, y + jitter, pen=None, symbol="o", symbolSize=5,
                           symbolBrush=(20, 20, 20, 150), symbolPen=None)
        if self.intervals:
            with_iv = [(y, lb) for y, lb in zip(ys, labels) if lb in self.intervals]
            x = np.array([self.means[lb] for _, lb in with_iv])
            self.plot.addItem(pg.ErrorBarItem(
                x=x, y=np.array([y for y, _ in with_iv], dtype=float), beam=0.2, pen=pg.mkPen("#1b1f24", width=1.5),
                left=x - np.array([self.intervals[lb][0] for _, lb in with_iv]),
                right=np.array([self.intervals[lb][1] for _, lb in with_iv]) - x))
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
        self.intervals: dict[str, tuple[tuple[float, float] | None, tuple[float, float] | None]] = {}

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
        self.note.setText("one point per defence and preset · bars: 95 % intervals · best: top left")
        xs = np.array([p[0] for p in self.points.values()])
        ys = np.array([p[1] for p in self.points.values()])
        self.intervals = {lb: (interval(groups[lb], "robust_abs_gain"), interval(groups[lb], "quality_score"))
                          for lb in self.points}
        for lb, (gi, qi) in self.intervals.items():
            if gi is None and qi is None:
                continue
            x, y = self.points[lb]
            self.plot.addItem(pg.ErrorBarItem(
                x=np.array([x]), y=np.array([y]), beam=0.004, pen=pg.mkPen("#9aa0a6"),
                left=np.array([x - gi[0] if gi else 0.0]), right=np.array([gi[1] - x if gi else 0.0]),
                bottom=np.array([y - qi[0] if qi else 0.0]), top=np.array([qi[1] - y if qi else 0.0])))
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
