"""The plan preview: what a run will compute, how long it should take, what cannot run."""
from __future__ import annotations

from html import escape

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.plan import Plan


class PlanDialog(QDialog):
    """Shows a :class:`gui.plan.Plan`; ``accepted`` means run (skipping what cannot run).

    Run is offered only when something can run; with problems its text says that the
    unavailable parts are skipped.
    """

    def __init__(self, plan: Plan, title: str, parent: QWidget | None = None, notes: list[str] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("plan_dialog")
        self.setWindowTitle("Plan of the run")
        self.plan = plan
        lay = QVBoxLayout(self)
        head = QLabel(f"<b>{escape(title)}</b>")
        head.setWordWrap(True)
        lay.addWidget(head)
        lines = plan.lines() + list(notes or [])
        body = "<br>".join(
            (f"<span style='color:#b3261e'>✗ {escape(t)}</span>" if t.startswith(("cannot", "nothing")) else escape(t))
            for t in lines)
        self.text = QLabel(body)
        self.text.setObjectName("plan_text")
        self.text.setWordWrap(True)
        self.text.setMinimumWidth(520)
        lay.addWidget(self.text)
        buttons = QDialogButtonBox()
        self.run_button = QPushButton("Skip unavailable and run" if plan.problems else "Run")
        self.run_button.setObjectName("plan_run")
        self.run_button.setEnabled(plan.runnable and plan.pending > 0)
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
