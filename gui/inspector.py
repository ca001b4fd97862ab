"""Inspector: clean, attacked and defended images and their difference, side by side.

Four linked views (zoom and pan together), a pixel read-out under the cursor, and two
difference views: |attacked − clean| amplified (RGB, with a grey colour bar of the |Δ| it
shows), or the signed difference averaged over channels in a diverging colour map with a
colour bar (units of 1/255). The attacked view can blink between clean and attacked in
place or swipe between them; a region box gives statistics of the difference inside it.
Everything here is numpy on uint8 arrays; no tensors.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.columns import score_line
from gui.image_ops import (
    DiffViews,
    InspectorImages,
    amplified_difference,
    difference_views,
    signed_difference,
)
from gui.inspector_compare import CompareModes
from gui.inspector_readout import ReadoutAndExport
from gui.inspector_views import (
    TITLE_STYLE,
    SteadyLabel,
    colour_bar,
    image_views,
    keep_space_when_hidden,
)
from gui.worker import BackgroundPool

__all__ = ["Inspector", "InspectorImages", "amplified_difference", "score_line", "signed_difference"]
COMPARE_MODES = [("side", "side by side"), ("blink", "blink clean/attacked"), ("swipe", "swipe clean|attacked")]

DIFF_MODES = [("abs", "|xₐ − x| amplified"), ("signed", "xₐ − x signed"),
              ("abs-defended", "|D(xₐ) − x| amplified"), ("signed-defended", "D(xₐ) − x signed")]


class Inspector(CompareModes, ReadoutAndExport, QWidget):
    """Linked image views with a difference map and a pixel read-out.

    The inspector owns its view state: every new item is fitted to the views unless the
    user has zoomed or panned (then their view is kept while the image size stays the
    same); "fit" brings the whole image back.
    """

    #: items with more pixels get their difference views computed in a background call
    DIFF_IN_BACKGROUND = 1_000_000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: InspectorImages | None = None
        self.user_view = False     # the user zoomed or panned: new items keep their view
        self._fit_pending = False
        self._diff_pending = False
        self._diff_request = 0      # the difference views asked for last (older answers are dropped)
        self.pool = BackgroundPool(self)   # difference views of big items (shutdown waits for them)
        self.rows: dict[str, dict] = {}
        self._diff_signed: np.ndarray | None = None
        self._diff_rgb: np.ndarray | None = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        bar = QHBoxLayout()
        self.title = SteadyLabel("No item selected — run an experiment or pick a row in Results")
        self.title.setObjectName("inspector_title")   # a long item name wraps instead of widening the window
        bar.addWidget(self.title, 1)
        self.follow = QCheckBox("follow run")
        self.follow.setChecked(True)
        self.follow.setToolTip("Show each item as it finishes while a run is in progress")
        bar.addWidget(self.follow)
        lay.addLayout(bar)
        self.scores = SteadyLabel("")
        # room for the score line's two lines (a wide window) from the start: the first item
        # resizes the views only when it needs a third
        self.scores.setMinimumHeight(2 * self.scores.fontMetrics().lineSpacing())
        self.scores.setObjectName("inspector_scores")
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
        self.defence.setMinimumContentsLength(9)
        self.defence.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.defence.setToolTip("Which defence's output the 'defended' view shows")
        controls.addWidget(self.defence, 1)
        controls.addWidget(QLabel("difference"))
        self.mode = QComboBox()
        self.mode.setObjectName("inspector_mode")
        for key, text in DIFF_MODES:
            self.mode.addItem(text, key)
        self.mode.setMinimumContentsLength(9)
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setToolTip("x clean, xₐ attacked, D(xₐ) the defended attacked image")
        controls.addWidget(self.mode, 1)
        lay.addLayout(controls)
        compare = QHBoxLayout()
        compare.addWidget(QLabel("gain"))
        self.gain = QSpinBox()
        self.gain.setRange(0, 255)
        self.gain.setValue(0)
        self.gain.setPrefix("×")
        self.gain.setSpecialValueText("auto")
        self.gain.setToolTip("Amplification of |difference|; auto maps the largest difference to white "
                             "(signed views scale the colour bar instead)")
        compare.addWidget(self.gain)
        compare.addWidget(QLabel("compare"))
        self.compare = QComboBox()
        self.compare.setObjectName("inspector_compare")
        for key, text in COMPARE_MODES:
            self.compare.addItem(text, key)
        self.compare.setToolTip("The attacked view: as is, blinking between clean and attacked in place, "
                                "or a swipe: drag on the attacked image to move the divider "
                                "(clean left of it, attacked right)")
        self.compare.setMinimumContentsLength(9)
        self.compare.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        compare.addWidget(self.compare, 1)
        self.swipe_fraction = 0.5
        self.fit_button = QToolButton()
        self.fit_button.setObjectName("inspector_fit")
        self.fit_button.setText("fit")
        self.fit_button.setToolTip("Show the whole image again (after zooming or panning: wheel, drag)")
        compare.addWidget(self.fit_button)
        self.region_button = QToolButton()
        self.region_button.setObjectName("inspector_region")
        self.region_button.setText("region")
        self.region_button.setCheckable(True)
        self.region_button.setToolTip("A box on the clean view: statistics of the difference inside it")
        compare.addWidget(self.region_button)
        lay.addLayout(compare)
        self.blink_timer = QTimer(self)
        self.blink_timer.setInterval(600)
        self.blink_timer.timeout.connect(self.blink_step)
        self.blink_shows_clean = False

        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("inspector_view")
        self.view.setBackground("#202124")
        self.view.ci.setSpacing(2)
        lay.addWidget(self.view, 1)
        self.plots, self.items = image_views(self.view)
        for plot in self.plots.values():
            plot.vb.sigRangeChangedManually.connect(self._on_user_view)
            # a splitter drag resizes a view: aspect-locked, it would zoom out a little each
            # time; refitted instead (unless the user zoomed)
            plot.vb.sigResized.connect(self._fit_soon)
        self.swipe_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#fbbc04", width=1))
        self.swipe_line.setVisible(False)
        self.plots["attacked"].addItem(self.swipe_line, ignoreBounds=True)
        # the signed map has its own item: a colour bar drives its item's levels and lookup
        # table, which must not touch the RGB |difference| view
        self.signed_item = pg.ImageItem(axisOrder="row-major")
        self.plots["diff"].addItem(self.signed_item)
        self.signed_item.setVisible(False)
        self.colorbar = colour_bar(self.view, 2, pg.colormap.get("CET-D1"), (-1, 1), "Δ (1/255)")
        self.colorbar.setImageItem(self.signed_item)
        # the amplified |difference| has its own scale: white is max|Δ| = 255 / gain; its
        # room is kept while hidden (the default mode shows it for every item)
        self.abs_bar = colour_bar(self.view, 3, pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)]), (0, 255),
                                  "|Δ| (1/255)")
        keep_space_when_hidden(self.abs_bar)
        # shown from the start (the default difference mode's scale): its first showing with
        # the first item re-laid the grid out twice (eight view resizes, ~40 ms)
        self.abs_bar.setVisible(True)
        self.roi = pg.RectROI([0, 0], [32, 32], pen=pg.mkPen("#fbbc04", width=2))
        self.plots["clean"].addItem(self.roi)
        self.roi.setVisible(False)
        self.region = QLabel("")
        self.region.setObjectName("inspector_region_stats")
        self.region.setWordWrap(True)
        self.region.setVisible(False)

        self.readout = QLabel("move the cursor over an image for pixel values")
        self.readout.setObjectName("inspector_readout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setWordWrap(True)
        font = self.readout.font()
        font.setFamily("monospace")
        font.setStyleHint(font.StyleHint.Monospace)
        self.readout.setFont(font)
        lay.addWidget(self.region)
        lay.addWidget(self.readout)

        self.defence.currentIndexChanged.connect(self._refresh)
        self.mode.currentIndexChanged.connect(self._refresh)
        self.gain.valueChanged.connect(self._refresh)
        self.compare.currentIndexChanged.connect(self._on_compare)
        self.fit_button.clicked.connect(self.fit)
        self.region_button.toggled.connect(self._on_region_toggled)
        self.roi.sigRegionChanged.connect(self._update_region)
        self.view.scene().sigMouseMoved.connect(self._on_mouse)

    # ---- content ---------------------------------------------------------------------------
    def show_images(self, images: InspectorImages, defence: str | None = None,
                    rows: dict[str, dict] | None = None) -> None:
        """Show one item; ``defence`` picks the defended view (first non-``none`` otherwise);
        ``rows`` (defence label → result row) feed the score line."""
        self.rows = dict(rows or {})
        old = self._shape()
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
        if not self.user_view or self._shape() != old:
            self.fit()

    # ---- view state ------------------------------------------------------------------------
    def _shape(self) -> tuple[int, int] | None:
        im = self.images
        arr = None if im is None else (im.clean if im.clean is not None else im.attacked)
        return None if arr is None else (int(arr.shape[0]), int(arr.shape[1]))

    def fit(self) -> None:
        """Show the whole image in every view (they are linked) and forget the user's zoom."""
        self.user_view = False
        shape = self._shape()
        if shape is None:
            return
        h, w = shape
        self.plots["clean"].vb.setRange(xRange=(0, w), yRange=(0, h), padding=0.01)

    def _on_user_view(self, *_: object) -> None:
        self.user_view = True

    def _fit_soon(self, *_: object) -> None:
        """Fit on the next event-loop turn (once however many views were resized)."""
        if not self.user_view and not self._fit_pending:
            self._fit_pending = True
            QTimer.singleShot(0, self._fit_now)

    def _fit_now(self) -> None:
        self._fit_pending = False
        if not self.user_view:
            self.fit()

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)
        self._fit_soon()   # after the views have their new size

    def clear(self, title: str, detail: str = "") -> None:
        """Show nothing but ``title`` (and ``detail``, e.g. an item's full error text)."""
        self.images, self.rows, self._diff_pending = None, {}, False
        self._diff_request += 1
        self._diff_signed = self._diff_rgb = None
        self.user_view = False
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
        if text:   # once shown, its line is kept: items with and without a flag do not move the views
            keep_space_when_hidden(self.flag)
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
        self._set("attacked", self.attacked_view())
        self._attacked_title()
        dfd = self._defended()
        self._set("defended", dfd)
        self.plots["defended"].setTitle(f"defended D(xₐ) · {self.current_defence() or '—'}",
                                        **TITLE_STYLE)
        self.scores.setText(score_line(self.rows.get(self.current_defence() or "")))
        self._request_diff()

    def _diff_inputs(self) -> tuple[np.ndarray | None, np.ndarray | None, str, float | None]:
        im = self.images
        mode = str(self.mode.currentData())
        other = self._defended() if mode.endswith("defended") else (im.attacked if im else None)
        return other, (im.clean if im else None), mode, float(self.gain.value()) or None

    def _request_diff(self) -> None:
        """Compute the difference views: above :attr:`DIFF_IN_BACKGROUND` pixels in a
        background call (numpy over every pixel: a 3-megapixel item held the GUI thread
        ~0.3 s), :meth:`_on_diff` shows them; a small item on the next event-loop turn (a
        thread costs more than its 1–3 ms)."""
        self._diff_pending = True
        self._diff_request += 1
        request, inputs = self._diff_request, self._diff_inputs()
        shape = self._shape()
        if shape is None or shape[0] * shape[1] <= self.DIFF_IN_BACKGROUND:
            QTimer.singleShot(0, self._refresh_diff)
            return
        self.pool.call(lambda: (request, difference_views(*inputs)), self._on_diff, self._on_diff_failed)

    @Slot(str)
    def _on_diff_failed(self, message: str) -> None:
        """A failed background computation is left pending: :meth:`_refresh_diff` makes it."""

    @Slot(object)
    def _on_diff(self, answer: tuple[int, DiffViews]) -> None:
        request, views = answer
        if request == self._diff_request and self._diff_pending and self.images is not None:
            self._show_diff(views)

    def _refresh_diff(self) -> None:
        """The difference views now, if they have not arrived yet (export, tests)."""
        if self._diff_pending and self.images is not None:
            self._show_diff(difference_views(*self._diff_inputs()))

    def _show_diff(self, views: DiffViews) -> None:
        """Show the difference views (and the region statistics)."""
        self._diff_pending = False
        self._diff_request += 1   # a late answer to an earlier request is dropped
        mode = str(self.mode.currentData())
        self._diff_signed, self._diff_rgb = views.signed, views.rgb
        diff_item = self.items["diff"]
        what = "D(xₐ)" if mode.endswith("defended") else "xₐ"
        if views.error:
            diff_item.clear()
            self.signed_item.clear()
            self.colorbar.setVisible(False)
            self.abs_bar.setVisible(False)
            title = f"difference n/a: {views.error}"
        elif views.rgb is not None:
            diff_item.setImage(views.rgb, levels=(0, 255), autoLevels=False)
            diff_item.setVisible(True)
            self.signed_item.setVisible(False)
            self.colorbar.setVisible(False)
            self.abs_bar.setLevels(low=0.0, high=255.0 / views.gain)
            self.abs_bar.setVisible(True)
            title = f"|{what} − x| ×{views.gain:.3g}"
        else:
            self.signed_item.setImage(views.signed, autoLevels=False)
            self.colorbar.setLevels(low=-views.max_abs, high=views.max_abs)
            self.signed_item.setVisible(True)
            diff_item.setVisible(False)
            self.colorbar.setVisible(True)
            self.abs_bar.setVisible(False)
            title = f"{what} − x  (mean over RGB)"
        self.plots["diff"].setTitle(title, **TITLE_STYLE)
        self._update_region()

    def _set(self, key: str, arr: np.ndarray | None) -> None:
        item = self.items[key]
        if arr is None:
            item.clear()
        else:
            item.setImage(arr, levels=(0, 255), autoLevels=False)
