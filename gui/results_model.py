"""Table model of raw result rows (image × metric × attack × defence, every score)."""
from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor

#: shown first, in this order; every other key of the rows follows
LEADING = [
    "image_name", "metric", "attack", "attack_preset", "defence", "defence_preset",
    "clear", "attacked", "defended-clear", "defended-attacked",
    "robust_abs_gain", "nonpurified_abs_gain", "both_defended_abs_gain", "gain_removed",
    "quality_score", "quality_score_clear", "similarity_score", "robustness", "nonpurified_robustness",
    "robust_rel_gain", "nonpurified_rel_gain", "both_defended_rel_gain",
    "attack_gained", "attack_iterations", "iteration_used", "attack_time", "defence_time", "error",
]
HIDDEN = {"defence_label", "item_id", "seed", "note"}
RAW_ROLE = Qt.ItemDataRole.UserRole + 1


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _new_columns(known: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """Keys of ``rows`` not in ``known`` (nor hidden), in first-seen order."""
    seen = set(known)
    new = []
    for r in rows:
        for k in r:
            if k not in seen and k not in HIDDEN:
                seen.add(k)
                new.append(k)
    return new


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4f}"
    return str(v)


class ResultsModel(QAbstractTableModel):
    """Rows are dicts as the runner and the store give them."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = list(LEADING)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.columns[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return self.columns[section]
        elif role == Qt.ItemDataRole.DisplayRole:
            return section + 1
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        key = self.columns[index.column()]
        v = row.get(key)
        if role == Qt.ItemDataRole.DisplayRole:
            return _fmt(v)
        if role == RAW_ROLE:
            return v
        if role == Qt.ItemDataRole.ToolTipRole:
            if row.get("error"):
                return str(row["error"])
            return None if v is None else str(v)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if _is_number(v):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and row.get("error"):
            return QColor("#b3261e")
        return None

    # ---- updates -----------------------------------------------------------------------------
    def _extend_columns(self, rows: list[dict[str, Any]]) -> None:
        new = _new_columns(self.columns, rows)
        if new:
            first = len(self.columns)
            self.beginInsertColumns(QModelIndex(), first, first + len(new) - 1)
            self.columns.extend(new)
            self.endInsertColumns()

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self._extend_columns(rows)
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.columns = LEADING + _new_columns(LEADING, self.rows)
        self.endResetModel()

    def clear(self) -> None:
        self.set_rows([])

    def row(self, i: int) -> dict[str, Any]:
        return self.rows[i]


class ResultsProxy(QSortFilterProxyModel):
    """Numeric-aware sorting (empty cells last) and a text filter over every column."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        a = left.data(RAW_ROLE)
        b = right.data(RAW_ROLE)
        a_num = _is_number(a) and not math.isnan(a)
        b_num = _is_number(b) and not math.isnan(b)
        if a_num and b_num:
            return a < b
        if a_num != b_num:
            return a_num  # numbers before empty cells
        return str(a or "") < str(b or "")
