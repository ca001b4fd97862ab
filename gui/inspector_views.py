"""The inspector's image views: four linked, aspect-locked pyqtgraph plots whose layout does
not move when their titles change, and the attacked view's swipe-aware box."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

TITLE_STYLE = {"color": "#e8eaed", "size": "9pt"}
VIEW_TITLES = {"clean": "clean x", "attacked": "attacked xₐ", "defended": "defended D(xₐ)", "diff": "difference"}


class SwipeViewBox(pg.ViewBox):
    """The attacked view's box: in swipe mode a left-button drag (or click) on the image
    moves the divider instead of panning; otherwise it pans and zooms like the others."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.on_swipe = None   # callable(x in image pixels) while swiping, else None

    def _swipe(self, ev: object) -> bool:
        if self.on_swipe is None or ev.button() != Qt.MouseButton.LeftButton:
            return False
        ev.accept()
        self.on_swipe(self.mapSceneToView(ev.scenePos()).x())
        return True

    def mouseDragEvent(self, ev: object, axis: object = None) -> None:
        if not self._swipe(ev):
            super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev: object) -> None:
        if not self._swipe(ev):
            super().mouseClickEvent(ev)


class SteadyTitle(pg.LabelItem):
    """A plot title that asks for no width: a longer title (a defence's name, a gain)
    never changes the grid's column widths, so the views are not resized (and refitted,
    ~7 ms each with four linked views) on every new item."""

    def updateMin(self) -> None:
        super().updateMin()
        h = self._sizeHint[Qt.SizeHint.PreferredSize][1]
        self.setMinimumWidth(0)
        for hint in (Qt.SizeHint.MinimumSize, Qt.SizeHint.PreferredSize):
            self._sizeHint[hint] = (0, h)
        self.updateGeometry()


def steady_title(plot: pg.PlotItem) -> None:
    """Give ``plot`` a :class:`SteadyTitle` in place of pyqtgraph's own title label."""
    old = plot.titleLabel
    plot.layout.removeItem(old)
    old.setParentItem(None)
    plot.titleLabel = SteadyTitle("", size="11pt", parent=plot)
    plot.layout.addItem(plot.titleLabel, 0, 1)


def keep_space_when_hidden(item: object) -> None:
    """A layout item (a colour bar) that keeps its room when hidden: showing it for the
    first item does not narrow the views."""
    policy = item.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    item.setSizePolicy(policy)


def image_views(layout: pg.GraphicsLayoutWidget) -> tuple[dict[str, pg.PlotItem], dict[str, pg.ImageItem]]:
    """The four views (clean, attacked, defended, diff) in a 2×2 grid of ``layout``, linked
    to the clean one; auto-range off (the inspector fits them itself)."""
    plots: dict[str, pg.PlotItem] = {}
    items: dict[str, pg.ImageItem] = {}
    for i, (key, text) in enumerate(VIEW_TITLES.items()):
        extra = {"viewBox": SwipeViewBox()} if key == "attacked" else {}
        plot = layout.addPlot(row=i // 2, col=i % 2, **extra)
        steady_title(plot)
        plot.setTitle(text, **TITLE_STYLE)
        for ax in ("left", "bottom"):
            plot.hideAxis(ax)
        plot.setAspectLocked(True)
        plot.invertY(True)
        plot.setMenuEnabled(False)
        plot.hideButtons()                      # the unlabeled "A": the inspector's "fit" button instead
        plot.vb.disableAutoRange()              # new images never re-range the views
        img = pg.ImageItem(axisOrder="row-major")
        plot.addItem(img)
        plots[key], items[key] = plot, img
    for key in ("attacked", "defended", "diff"):
        plots[key].setXLink(plots["clean"])
        plots[key].setYLink(plots["clean"])
    return plots, items


def colour_bar(layout: pg.GraphicsLayoutWidget, col: int, cmap: pg.ColorMap, values: tuple[float, float],
               label: str) -> pg.ColorBarItem:
    """A hidden, non-interactive colour bar in row 1, column ``col`` of ``layout``."""
    bar = pg.ColorBarItem(values=values, colorMap=cmap, interactive=False, width=12)
    layout.addItem(bar, row=1, col=col)
    bar.getAxis("right").setTextPen("#e8eaed")
    bar.getAxis("right").setLabel(label, color="#e8eaed")
    bar.setVisible(False)
    return bar


class SteadyLabel(QLabel):
    """Word-wrapped rich text whose height grows with its text but never shrinks: the views
    below it are resized once, not on every item whose text is a line shorter or longer
    (each resize refits four linked views, ~7 ms each)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)

    def setText(self, text: str) -> None:
        super().setText(text)
        self._hold()

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)
        self._hold()

    def _hold(self) -> None:
        w = self.width()
        if w > 0:
            need = self.heightForWidth(w)
            if need > self.minimumHeight():
                self.setMinimumHeight(need)
