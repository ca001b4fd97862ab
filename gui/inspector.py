"""Inspector: clean, attacked and defended images and their difference, side by side.

Four linked views (zoom and pan together), a pixel read-out under the cursor, and two
difference views: |attacked − clean| amplified (RGB), or the signed difference averaged
over channels in a diverging colour map with a colour bar (units of 1/255). Everything
here is numpy on uint8 arrays; no tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSpinBox, QVBoxLayout, QWidget

DIFF_MODES = [
    ("abs", "|xₐ − x| amplified"),
    ("signed", "xₐ − x signed"),
    ("abs-defended", "|D(xₐ) − x| amplified"),
    ("signed-defended", "D(xₐ) − x signed"),
]


@dataclass
class InspectorImages:
    """uint8 H×W×3 arrays of one item; defended images keyed by defence label."""

    title: str
    clean: np.ndarray | None
    attacked: np.ndarray | None
    defended_clean: dict[str, np.ndarray] = field(default_factory=dict)
    defended_attacked: dict[str, np.ndarray] = field(default_factory=dict)
    note: str = ""


def _check_same_size(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"sizes differ ({a.shape[1]}×{a.shape[0]} vs {b.shape[1]}×{b.shape[0]})")


def signed_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a − b`` in units of 1/255, averaged over channels (H×W float32).

    Raises:
        ValueError: when the sizes differ (e.g. a random crop).
    """
    _check_same_size(a, b)
    return (a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)


def amplified_difference(a: np.ndarray, b: np.ndarray, gain: float | None = None) -> tuple[np.ndarray, float]:
    """``|a − b| × gain`` per channel, clipped to uint8 (H×W×3).

    Args:
        gain: the amplification; None maps the largest |a − b| to 255.

    Returns:
        the amplified difference and the gain used.
    """
    _check_same_size(a, b)
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    if gain is None:
        m = int(d.max())
        gain = 255.0 / m if m > 0 else 1.0
    return np.clip(d.astype(np.float32) * gain, 0, 255).astype(np.uint8), gain


def score_line(row: dict | None) -> str:
    """The scores of one result row, as the inspector's caption."""
    if not row:
        return ""
    if row.get("error"):
        return f"<span style='color:#b3261e'>{row['error']}</span>"

    def f(key: str, digits: int = 4) -> str:
        v = row.get(key)
        return f"{v:.{digits}g}" if isinstance(v, (int, float)) else "—"

    return (f"M(x) <b>{f('clear')}</b> · M(xₐ) <b>{f('attacked')}</b> · M(D(x)) {f('defended-clear')} · "
            f"M(D(xₐ)) <b>{f('defended-attacked')}</b> · gain left <b>{f('robust_abs_gain', 3)}</b> "
            f"(undefended {f('nonpurified_abs_gain', 3)}) · quality {f('quality_score', 3)}")


class Inspector(QWidget):
    """Linked image views with a difference map and a pixel read-out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: InspectorImages | None = None
        self.rows: dict[str, dict] = {}
        self._diff_signed: np.ndarray | None = None
        self._diff_rgb: np.ndarray | None = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        bar = QHBoxLayout()
        self.title = QLabel("No item selected — run an experiment or pick a row in Results")
        self.title.setObjectName("inspector_title")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.title, 1)
        self.follow = QCheckBox("follow run")
        self.follow.setChecked(True)
        self.follow.setToolTip("Show each item as it finishes while a run is in progress")
        bar.addWidget(self.follow)
        lay.addLayout(bar)
        self.scores = QLabel("")
        self.scores.setObjectName("inspector_scores")
        self.scores.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scores.setWordWrap(True)
        self.scores.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.scores)
        self.flag = QLabel("")
        self.flag.setObjectName("inspector_flag")
        self.flag.setWordWrap(True)
        self.flag.setStyleSheet("color:#b06000")
        self.flag.setVisible(False)
        lay.addWidget(self.flag)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("defence"))
        self.defence = QComboBox()
        self.defence.setObjectName("inspector_defence")
        self.defence.setMinimumContentsLength(8)
        self.defence.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.defence.setToolTip("Which defence's output the 'defended' view shows")
        controls.addWidget(self.defence, 1)
        controls.addWidget(QLabel("difference"))
        self.mode = QComboBox()
        self.mode.setObjectName("inspector_mode")
        for key, text in DIFF_MODES:
            self.mode.addItem(text, key)
        self.mode.setToolTip("x clean, xₐ attacked, D(xₐ) the defended attacked image")
        controls.addWidget(self.mode, 1)
        controls.addWidget(QLabel("gain"))
        self.gain = QSpinBox()
        self.gain.setRange(0, 255)
        self.gain.setValue(0)
        self.gain.setPrefix("×")
        self.gain.setSpecialValueText("auto")
        self.gain.setToolTip("Amplification of |difference|; auto maps the largest difference to white "
                             "(signed views scale the colour bar instead)")
        controls.addWidget(self.gain)
        lay.addLayout(controls)

        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("inspector_view")
        self.view.setBackground("#202124")
        self.view.ci.setSpacing(2)
        lay.addWidget(self.view, 1)
        self.plots: dict[str, pg.PlotItem] = {}
        self.items: dict[str, pg.ImageItem] = {}
        titles = {"clean": "clean x", "attacked": "attacked xₐ", "defended": "defended D(xₐ)",
                  "diff": "difference"}
        for i, (key, text) in enumerate(titles.items()):
            plot = self.view.addPlot(row=i // 2, col=i % 2)
            plot.setTitle(text, color="#e8eaed", size="9pt")
            for ax in ("left", "bottom"):
                plot.hideAxis(ax)
            plot.setAspectLocked(True)
            plot.invertY(True)
            plot.setMenuEnabled(False)
            img = pg.ImageItem(axisOrder="row-major")
            plot.addItem(img)
            self.plots[key] = plot
            self.items[key] = img
        base = self.plots["clean"]
        for key in ("attacked", "defended", "diff"):
            self.plots[key].setXLink(base)
            self.plots[key].setYLink(base)
        self.colorbar = pg.ColorBarItem(values=(-1, 1), colorMap=pg.colormap.get("CET-D1"),
                                        interactive=False, width=12)
        # the signed map has its own item: a colour bar drives its item's levels and lookup
        # table, which must not touch the RGB |difference| view
        self.signed_item = pg.ImageItem(axisOrder="row-major")
        self.plots["diff"].addItem(self.signed_item)
        self.signed_item.setVisible(False)
        self.colorbar.setImageItem(self.signed_item)
        self.view.addItem(self.colorbar, row=1, col=2)
        self.colorbar.getAxis("right").setTextPen("#e8eaed")
        self.colorbar.getAxis("right").setLabel("Δ (1/255)", color="#e8eaed")
        self.colorbar.setVisible(False)

        self.readout = QLabel("move the cursor over an image for pixel values")
        self.readout.setObjectName("inspector_readout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        font = self.readout.font()
        font.setFamily("monospace")
        font.setStyleHint(font.StyleHint.Monospace)
        self.readout.setFont(font)
        lay.addWidget(self.readout)

        self.defence.currentIndexChanged.connect(self._refresh)
        self.mode.currentIndexChanged.connect(self._refresh)
        self.gain.valueChanged.connect(self._refresh)
        self.view.scene().sigMouseMoved.connect(self._on_mouse)

    # ---- content ---------------------------------------------------------------------------
    def show_images(self, images: InspectorImages, defence: str | None = None,
                    rows: dict[str, dict] | None = None) -> None:
        """Show one item; ``defence`` picks the defended view (first non-``none`` otherwise);
        ``rows`` (defence label → result row) feed the score line."""
        self.rows = dict(rows or {})
        first = self.images is None or self.images.clean is None or images.clean is None \
            or self.images.clean.shape != images.clean.shape
        self.images = images
        labels = list(images.defended_attacked)
        self.defence.blockSignals(True)
        self.defence.clear()
        for label in labels:
            self.defence.addItem(label)
        if defence is None or defence not in labels:
            defence = next((lb for lb in labels if lb != "none"), labels[0] if labels else None)
        if defence is not None:
            self.defence.setCurrentText(defence)
        self.defence.blockSignals(False)
        self.title.setText(images.title + (f"   <i>{images.note}</i>" if images.note else ""))
        self._refresh()
        if first:
            self.plots["clean"].autoRange(padding=0.01)

    def clear(self, title: str, detail: str = "") -> None:
        """Show nothing but ``title`` (and ``detail``, e.g. an item's full error text)."""
        self.images = None
        self.rows = {}
        self._diff_signed = self._diff_rgb = None
        for item in (*self.items.values(), self.signed_item):
            item.clear()
        self.colorbar.setVisible(False)
        self.defence.clear()
        self.title.setText(title)
        self.scores.setText(f"<span style='color:#b3261e'>{detail}</span>" if detail else "")
        self.set_flag("")

    def set_flag(self, text: str) -> None:
        """A warning about the item's scores (no gain, past the metric's bounds)."""
        self.flag.setText(f"⚠ {text}" if text else "")
        self.flag.setVisible(bool(text))

    def current_defence(self) -> str | None:
        return self.defence.currentText() or None

    def _defended(self) -> np.ndarray | None:
        if self.images is None:
            return None
        return self.images.defended_attacked.get(self.current_defence() or "")

    def _refresh(self, *_: object) -> None:
        im = self.images
        if im is None:
            return
        self._set("clean", im.clean)
        self._set("attacked", im.attacked)
        dfd = self._defended()
        self._set("defended", dfd)
        self.plots["defended"].setTitle(f"defended D(xₐ) · {self.current_defence() or '—'}",
                                        color="#e8eaed", size="9pt")
        self.scores.setText(score_line(self.rows.get(self.current_defence() or "")))
        mode = self.mode.currentData()
        other = dfd if mode.endswith("defended") else im.attacked
        self._diff_signed = self._diff_rgb = None
        diff_item = self.items["diff"]
        title = "difference"
        try:
            if im.clean is None or other is None:
                raise ValueError("image not available")
            self._diff_signed = signed_difference(other, im.clean)
            if mode.startswith("abs"):
                self._diff_rgb, gain = amplified_difference(other, im.clean, float(self.gain.value()) or None)
                diff_item.setImage(self._diff_rgb, levels=(0, 255), autoLevels=False)
                diff_item.setVisible(True)
                self.signed_item.setVisible(False)
                self.colorbar.setVisible(False)
                title = f"|{'D(xₐ)' if mode.endswith('defended') else 'xₐ'} − x| ×{gain:.3g}"
            else:
                m = float(np.abs(self._diff_signed).max()) or 1.0
                self.signed_item.setImage(self._diff_signed, autoLevels=False)
                self.colorbar.setLevels(low=-m, high=m)
                self.signed_item.setVisible(True)
                diff_item.setVisible(False)
                self.colorbar.setVisible(True)
                title = f"{'D(xₐ)' if mode.endswith('defended') else 'xₐ'} − x  (mean over RGB)"
        except ValueError as exc:
            diff_item.clear()
            self.signed_item.clear()
            self.colorbar.setVisible(False)
            title = f"difference n/a: {exc}"
        self.plots["diff"].setTitle(title, color="#e8eaed", size="9pt")

    def _set(self, key: str, arr: np.ndarray | None) -> None:
        item = self.items[key]
        if arr is None:
            item.clear()
        else:
            item.setImage(arr, levels=(0, 255), autoLevels=False)

    # ---- read-out --------------------------------------------------------------------------
    def _on_mouse(self, pos: QPointF) -> None:
        for plot in self.plots.values():
            if plot.sceneBoundingRect().contains(pos):
                p = plot.vb.mapSceneToView(pos)
                self.readout.setText(self.pixel_text(int(np.floor(p.x())), int(np.floor(p.y()))))
                return

    def pixel_text(self, x: int, y: int) -> str:
        """The read-out for pixel (x, y) in every view that has it."""
        im = self.images
        if im is None:
            return ""
        parts = [f"x={x:<4d} y={y:<4d}"]

        def rgb(name: str, arr: np.ndarray | None) -> None:
            if arr is not None and 0 <= y < arr.shape[0] and 0 <= x < arr.shape[1]:
                r, g, b = (int(v) for v in arr[y, x, :3])
                parts.append(f"{name} ({r:3d},{g:3d},{b:3d})")

        rgb("clean", im.clean)
        rgb("attacked", im.attacked)
        rgb("defended", self._defended())
        d = self._diff_signed
        if d is not None and 0 <= y < d.shape[0] and 0 <= x < d.shape[1]:
            parts.append(f"Δ {d[y, x]:+.2f}/255")
        return "  ".join(parts)

    # ---- for tests and export ------------------------------------------------------------
    def difference(self) -> np.ndarray | None:
        """The signed difference currently shown (H×W, units of 1/255)."""
        return self._diff_signed

    def shown_arrays(self) -> dict[str, np.ndarray]:
        """Every image currently shown, by view name (for "Save images")."""
        out: dict[str, np.ndarray] = {}
        im = self.images
        if im is None:
            return out
        if im.clean is not None:
            out["clean"] = im.clean
        if im.attacked is not None:
            out["attacked"] = im.attacked
        d = self._defended()
        if d is not None:
            out[f"defended-attacked--{self.current_defence()}"] = d
            dc = im.defended_clean.get(self.current_defence() or "")
            if dc is not None:
                out[f"defended-clean--{self.current_defence()}"] = dc
        if self._diff_rgb is not None:
            out["difference-abs"] = self._diff_rgb
        if self._diff_signed is not None:
            m = float(np.abs(self._diff_signed).max()) or 1.0
            lut = pg.colormap.get("CET-D1").getLookupTable(nPts=256, mode="byte")[:, :3]
            idx = np.clip((self._diff_signed / m + 1) * 127.5, 0, 255).astype(np.uint8)
            out["difference-signed"] = lut[idx]
        return out
