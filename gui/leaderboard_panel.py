"""The leaderboard tab: defences and metrics ranked with intervals, for one stored experiment.

The numbers come from :func:`engine.results.leaderboard.store_leaderboard`, computed in a
background call (the bootstrap over images can take a moment on large runs); the table
only displays them.
"""
from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.evaluation.leaderboard import QUALITY_FLOOR
from engine.core.labels import component_label, fmt
from gui.elided_label import ElidedLabel
from gui.worker import BackgroundCall, BackgroundPool

def _store_leaderboard(store: str, experiment: str | None, floor: float) -> list[dict]:
    """:func:`engine.results.leaderboard.store_leaderboard`, imported in the background
    thread that runs it (it needs torch, which the window's first paint does not)."""
    from engine.results.leaderboard import store_leaderboard

    return store_leaderboard(store, experiment, floor)


DEFENCE_COLUMNS = [("rank", "rank"), ("pareto_rank", "Pareto rank"), ("label", "defence"),
                   ("gain", "remaining gain ↓"), ("quality", "quality ↑"), ("n", "n"), ("note", "note")]
METRIC_COLUMNS = [("rank", "rank"), ("metric", "metric"), ("robustness", "robustness ↑"),
                  ("mrb_abs_gain", "norm. abs. gain"), ("wasserstein", "Wasserstein"), ("energy", "energy"),
                  ("compressed_gain", "survives compression"), ("n", "n")]


def cell_text(row: dict[str, Any], key: str) -> str:
    """A value with its 95 % interval in brackets when the row has one."""
    v = row.get(key)
    if key in ("rank", "pareto_rank", "n"):
        return "–" if v in (None, "") else str(v)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "" if v is None else str(v)
    lo, hi = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    return fmt(v) + (f"  [{fmt(lo)}, {fmt(hi)}]" if lo is not None and hi is not None else "")


class LeaderboardPanel(QWidget):
    """Pick the table (defences / metrics), the attack block and the quality floor."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self._store: str | None = None
        self._experiment: str | None = None
        self._call: BackgroundCall | None = None   # the newest computation; older answers are dropped
        self.pool = BackgroundPool(self)            # keeps every computation until it ends (shutdown waits)
        lay = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("table"))
        self.table_kind = QComboBox()
        self.table_kind.addItems(["defences", "metrics"])
        bar.addWidget(self.table_kind)
        bar.addWidget(QLabel("attack"))
        self.attack = QComboBox()
        self.attack.setMinimumContentsLength(6)
        self.attack.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        bar.addWidget(self.attack)
        bar.addWidget(QLabel("floor"))
        self.floor = QDoubleSpinBox()
        self.floor.setRange(0.0, 1.0)
        self.floor.setSingleStep(0.05)
        self.floor.setValue(QUALITY_FLOOR)
        self.floor.setToolTip("defences whose mean quality is below the floor are listed but not ranked")
        bar.addWidget(self.floor)
        self.note = ElidedLabel("no experiment shown", min_width=40)
        self.note.setObjectName("leaderboard_note")
        bar.addWidget(self.note, 1)
        lay.addLayout(bar)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        lay.addWidget(self.table, 1)
        self.table_kind.currentIndexChanged.connect(self._refill)
        self.attack.currentIndexChanged.connect(self._refill)
        self.floor.editingFinished.connect(self.reload)

    def show_store(self, store_path: str, experiment_id: str | None = None) -> BackgroundCall:
        """Compute the leaderboard of a stored experiment in the background, then show it."""
        self._store, self._experiment = str(store_path), experiment_id
        return self.reload()

    def clear(self, text: str = "no experiment shown") -> None:
        """Show nothing (no stored experiment); a computation in flight is ignored."""
        self._store = self._experiment = None
        self._call = None
        self.rows = []
        self.attack.blockSignals(True)
        self.attack.clear()
        self.attack.blockSignals(False)
        self.note.setText(text)
        self._refill()

    def shown_experiment(self) -> str | None:
        """The experiment whose leaderboard is shown (or being computed)."""
        return self._experiment

    @Slot()
    def reload(self) -> BackgroundCall | None:
        if self._store is None:
            return None
        self.note.setText("computing the leaderboard …")
        self._call = self.pool.call(partial(_store_leaderboard, self._store, self._experiment, self.floor.value()),
                                    self._on_rows, self._on_call_failed)
        return self._call

    @Slot(object)
    def _on_rows(self, rows: list[dict[str, Any]]) -> None:
        if self.sender() is self._call:   # an answer for another experiment (the user moved on) is dropped
            self.set_leaderboard(rows)

    @Slot(str)
    def _on_call_failed(self, message: str) -> None:
        if self.sender() is self._call:
            self._on_failed(message)

    def wait(self, ms: int = 30_000) -> bool:
        """Block until every computation in flight has ended, the dropped ones too (shutdown, tests)."""
        return all([call.wait(ms) for call in list(self.pool.calls)])

    @Slot(object)
    def set_leaderboard(self, rows: list[dict[str, Any]]) -> None:
        self.rows = list(rows)
        attacks = list(dict.fromkeys(str(r["attack"]) for r in self.rows))
        current = self.attack.currentText()
        self.attack.blockSignals(True)
        self.attack.clear()
        self.attack.addItems(attacks)
        if current in attacks:
            self.attack.setCurrentText(current)
        elif "all attacks" in attacks:
            self.attack.setCurrentText("all attacks")
        self.attack.blockSignals(False)
        if not self.rows:
            self.note.setText("nothing finished yet")
        self._refill()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.note.setText(f"could not compute the leaderboard: {message}")

    def shown_rows(self) -> list[dict[str, Any]]:
        kind, attack = self.table_kind.currentText(), self.attack.currentText()
        return [{**r, "label": component_label(r.get("name"), r.get("preset"))} for r in self.rows
                if r["table"] == kind and str(r["attack"]) == attack]

    @Slot()
    def _refill(self) -> None:
        columns = DEFENCE_COLUMNS if self.table_kind.currentText() == "defences" else METRIC_COLUMNS
        rows = self.shown_rows()
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels([title for _, title in columns])
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, (key, _) in enumerate(columns):
                item = QTableWidgetItem(cell_text(r, key))
                if j != 2 or key == "robustness":
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        if self.rows:   # the rows of the table shown, not of every table computed
            self.note.setText(f"{len(rows)} row{'s' if len(rows) != 1 else ''} · values with 95 % intervals")
