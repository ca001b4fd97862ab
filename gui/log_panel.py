"""Log panel: run messages and errors, instead of modal dialogs in the middle of a run."""
from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QColor, QTextCharFormat
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

LEVEL_COLORS = {"info": "#202124", "warning": "#b06000", "error": "#b3261e", "ok": "#188038"}


class LogPanel(QWidget):
    """Append-only, timestamped, coloured by level; counts errors."""

    countsChanged = Signal(int)  # number of errors

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.text = QPlainTextEdit()
        self.text.setObjectName("log_text")
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(5000)
        lay.addWidget(self.text, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        clear = QPushButton("Clear log")
        clear.clicked.connect(self.clear)
        row.addWidget(clear)
        lay.addLayout(row)
        self.errors = 0
        self.entries: list[tuple[str, str]] = []

    @Slot(str, str)
    def log(self, level: str, message: str) -> None:
        self.entries.append((level, message))
        fmt = QTextCharFormat()
        fmt.setForeground(QColor(LEVEL_COLORS.get(level, "#202124")))
        cursor = self.text.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        stamp = time.strftime("%H:%M:%S")
        tag = "" if level in ("info", "ok") else f"{level.upper()}: "
        cursor.insertText(f"{stamp}  {tag}{message}\n", fmt)
        self.text.setTextCursor(cursor)
        self.text.ensureCursorVisible()
        if level == "error":
            self.errors += 1
            self.countsChanged.emit(self.errors)

    def clear(self) -> None:
        self.text.clear()
        self.entries.clear()
        self.errors = 0
        self.countsChanged.emit(0)

    def contains(self, needle: str) -> bool:
        return any(needle in m for _, m in self.entries)


class LogBridge(QObject):
    """A ``logging.Handler`` target: records from any thread arrive in the GUI thread."""

    message = Signal(str, str)

    class Handler(logging.Handler):
        def __init__(self, bridge: LogBridge) -> None:
            super().__init__(level=logging.WARNING)
            self.bridge = bridge

        def emit(self, record: logging.LogRecord) -> None:
            try:
                level = "error" if record.levelno >= logging.ERROR else "warning"
                self.bridge.message.emit(level, f"[{record.name}] {record.getMessage()}")
            except Exception:  # noqa: BLE001 - logging must never raise
                pass

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.handler = LogBridge.Handler(self)

    def install(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).addHandler(self.handler)

    def uninstall(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).removeHandler(self.handler)
