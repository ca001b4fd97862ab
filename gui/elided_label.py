"""A one-line label that never widens its window: long text is elided, shown whole in the tooltip."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """Plain text, elided at the right when the space is short.

    Its size hint is the text's width up to ``max_hint`` pixels and its minimum width is
    ``min_width``, so a long text (a certificate summary, a store path) takes the room
    that is free but never makes the layout, and so the window, wider.

    Args:
        text: the initial text; min_width, max_hint: in pixels; elide: where the dots go.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None, *, min_width: int = 60,
                 max_hint: int = 320, elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(text, parent)
        self.min_width, self.max_hint, self.elide = min_width, max_hint, elide
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(min(self.max_hint, fm.horizontalAdvance(self.text()) + 6), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.min_width, super().minimumSizeHint().height())

    def paintEvent(self, _event: object) -> None:
        p = QPainter(self)
        r = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), self.elide, r.width())
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(r, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)
