"""The run's progress bar and ETA under the Run button."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from gui.progress import ProgressTracker, format_eta


class RunProgress(QWidget):
    """Items done of the items to compute, the attack step in flight, the ETA and how
    many items the store already held (reused, not computed)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tracker = ProgressTracker()
        self._running = False
        self._reused = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._show)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setObjectName("progress")
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.bar.setFormat("idle")
        row.addWidget(self.bar, 1)
        self.eta = QLabel("ETA —")
        self.eta.setObjectName("eta")
        self.eta.setVisible(False)
        self.eta.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.eta)

    def start(self, pending: int, total: int, reused: int = 0) -> None:
        """A run starts: ``pending`` items to compute of ``total``, ``reused`` of them
        held by the store already (from this or any experiment)."""
        self._running = True
        self.tracker.start(pending)
        self.bar.setValue(0)
        self._reused = f" · {reused} reused from the store" if reused else ""
        resumed = total - pending - reused
        self._reused += f" · {resumed} done before" if resumed > 0 else ""
        self.bar.setFormat(f"0 / {pending} items{self._reused}")
        self.bar.setToolTip(f"{total} item(s): {pending} to compute{self._reused}")
        self.eta.setText("ETA —")
        self.eta.setVisible(True)

    def advance(self, finished: int | None = None, fraction_in_item: float | None = None) -> None:
        """Record progress; the bar and ETA are repainted by a timer (~4 Hz), not per step."""
        t = self.tracker
        if finished is not None:
            t.finished = finished
        if fraction_in_item is not None:
            t.fraction_in_item = max(0.0, min(1.0, fraction_in_item))
        if not self._timer.isActive():
            self._timer.start()

    def _show(self) -> None:
        if not self._running:
            return
        t = self.tracker
        self.bar.setValue(round(1000 * t.progress))
        self.bar.setFormat(f"{t.finished} / {t.pending} items  ·  {100 * t.progress:.0f}%{self._reused}")
        self.eta.setText(format_eta(t.eta()))

    def reset(self) -> None:
        """Idle: nothing of an earlier run or another experiment is left on the bar."""
        self._running = False
        self._timer.stop()
        self.tracker.start(0)
        self._reused = ""
        self.bar.setValue(0)
        self.bar.setFormat("idle")
        self.bar.setToolTip("")
        self.eta.setText("")
        self.eta.setVisible(False)

    def finish(self, text: str) -> None:
        """The run ended: ``text`` on the bar (and its tooltip)."""
        self._running = False
        self._timer.stop()
        self.bar.setFormat(text)
        self.bar.setToolTip(text)
        if self.tracker.pending:
            self.bar.setValue(round(1000 * self.tracker.finished / self.tracker.pending))
        self.eta.setText("")
        self.eta.setVisible(False)
