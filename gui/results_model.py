"""Table model of raw result rows (image × metric × attack × defence, every score)."""
from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractProxyModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor

from gui.columns import column_title, column_tooltip

#: shown first, in this order; every other key of the rows follows
LEADING = [
    "image_name", "metric", "attack", "attack_preset", "defence", "defence_preset",
    "clear", "attacked", "defended-clear", "defended-attacked",
    "robust_abs_gain", "nonpurified_abs_gain", "both_defended_abs_gain", "gain_removed",
    "quality_score", "quality_score_clear", "similarity_score", "robustness", "nonpurified_robustness",
    "robust_rel_gain", "nonpurified_rel_gain", "both_defended_rel_gain",
    "flag", "attack_gained", "attack_iterations", "iteration_used", "attack_time", "defence_time", "error",
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


def _texts(rows: list[dict[str, Any]]) -> list[str]:
    """Per row, its text cells (image, metric, attack, defence, flag, error…) joined, lower
    case: formatting every number of 50,000 rows would stall the GUI for most of a second."""
    return ["\x1f".join([v for v in r.values() if isinstance(v, str)]).lower() for r in rows]


class ResultsModel(QAbstractTableModel):
    """Rows are dicts as the runner and the store give them."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = list(LEADING)
        self._text: list[str] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return column_title(self.columns[section])
            if role == Qt.ItemDataRole.ToolTipRole:
                return column_tooltip(self.columns[section])
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
        self._text.extend(_texts(rows))
        self.endInsertRows()

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self._text = _texts(self.rows)
        self.columns = LEADING + _new_columns(LEADING, self.rows)
        self.endResetModel()

    def clear(self) -> None:
        self.set_rows([])

    def row(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def row_text(self, i: int) -> str:
        """The text cells of row ``i``, lower case (what the filter searches)."""
        return self._text[i]


def _sort_key(v: Any) -> tuple[int, Any]:
    """Numbers first (by value), then text; empty cells last."""
    if _is_number(v) and not math.isnan(v):
        return (0, v)
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return (2, "")
    return (1, str(v))


class ResultsProxy(QAbstractProxyModel):
    """Sorted and filtered view of a :class:`ResultsModel`, computed in plain Python.

    Sorting is one ``sorted`` over the column's values and filtering one pass over each
    row's cached lower-case text, so 50,000 rows sort or filter in tens of milliseconds
    (a QSortFilterProxyModel calls back into Python for every comparison). Rows added
    while a run goes on are inserted at their sorted place.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._order: list[int] = []        # proxy row → source row
        self._pos: dict[int, int] = {}     # source row → proxy row
        self._needle = ""
        self._column: int = -1
        self._descending = False

    # ---- wiring --------------------------------------------------------------------------
    def setSourceModel(self, model: ResultsModel) -> None:  # type: ignore[override]
        super().setSourceModel(model)
        model.modelReset.connect(self._on_source_reset)
        model.rowsInserted.connect(self._on_rows_inserted)
        model.columnsAboutToBeInserted.connect(self._on_columns_about)
        model.columnsInserted.connect(self._on_columns_inserted)
        model.dataChanged.connect(self._on_data_changed)
        self._rebuild()

    def _src(self) -> ResultsModel:
        return self.sourceModel()  # type: ignore[return-value]

    # ---- QAbstractProxyModel -------------------------------------------------------------
    def index(self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if parent.isValid() or not (0 <= row < len(self._order)) or not (0 <= column < self.columnCount()):
            return QModelIndex()
        return self.createIndex(row, column)

    def parent(self, index: Any = None) -> QModelIndex:  # type: ignore[override]
        return QModelIndex()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        src = self.sourceModel()
        return 0 if parent.isValid() or src is None else src.columnCount()

    def mapToSource(self, proxy: QModelIndex | QPersistentModelIndex) -> QModelIndex:
        if not proxy.isValid() or proxy.row() >= len(self._order):
            return QModelIndex()
        return self._src().index(self._order[proxy.row()], proxy.column())

    def mapFromSource(self, source: QModelIndex | QPersistentModelIndex) -> QModelIndex:
        if not source.isValid():
            return QModelIndex()
        r = self._pos.get(source.row())
        return QModelIndex() if r is None else self.createIndex(r, source.column())

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            return self._src().headerData(section, orientation, role)
        return section + 1 if role == Qt.ItemDataRole.DisplayRole else None

    # ---- sort and filter -----------------------------------------------------------------
    def setFilterFixedString(self, text: str) -> None:
        needle = text.strip().lower()
        narrower = bool(self._needle) and self._needle in needle   # typing on: only the rows shown can match
        self._needle = needle
        self._rebuild(self._order if narrower else None)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        descending = order == Qt.SortOrder.DescendingOrder
        if (column, descending) == (self._column, self._descending):
            return  # the view asks twice (sortByColumn, then the header's indicator)
        self._column, self._descending = column, descending
        self._rebuild()

    def _accepts(self, i: int) -> bool:
        return not self._needle or self._needle in self._src().row_text(i)

    def _key(self, i: int) -> tuple[int, Any]:
        src = self._src()
        return _sort_key(src.rows[i].get(src.columns[self._column]))

    def _sorted(self, rows: list[int]) -> list[int]:
        """``rows`` in the column's order: numbers (numpy argsort), else text; empty last."""
        src = self._src()
        if not (0 <= self._column < len(src.columns)) or not rows:
            return rows
        key = src.columns[self._column]
        values = [src.rows[i].get(key) for i in rows]
        try:
            arr = np.array(values, dtype=float)   # None → NaN; text raises
        except (TypeError, ValueError):
            keyed = sorted(range(len(rows)), key=lambda j: _sort_key(values[j]), reverse=self._descending)
            return [rows[j] for j in keyed]
        empty = np.isnan(arr)
        order = np.argsort(-arr if self._descending else arr, kind="stable")  # NaN sorts last either way
        order = np.concatenate([order[~empty[order]], order[empty[order]]])
        if len(rows) == len(src.rows):
            return order.tolist()            # every row: positions are the rows
        return np.asarray(rows)[order].tolist()

    def _rebuild(self, among: list[int] | None = None) -> None:
        src = self._src()
        candidates = range(len(src.rows)) if among is None else sorted(among)
        rows = [i for i in candidates if self._accepts(i)]
        order = self._sorted(rows)
        # a layout change, not a reset: the view keeps its state and only remaps the few
        # persistent indexes (selection, current); a reset of 50,000 rows costs ~100 ms
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        keep = [(self._order[i.row()] if 0 <= i.row() < len(self._order) else None, i.column()) for i in old]
        self._order = order
        self._pos = {s: p for p, s in enumerate(order)}
        new = [self.createIndex(self._pos[r], c) if r in self._pos else QModelIndex() for r, c in keep]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    def _on_source_reset(self) -> None:
        src = self._src()
        self.beginResetModel()
        rows = [i for i in range(len(src.rows)) if self._accepts(i)]
        self._order = self._sorted(rows)
        self._pos = {s: p for p, s in enumerate(self._order)}
        self.endResetModel()

    def _on_rows_inserted(self, _parent: Any, first: int, last: int) -> None:
        for i in range(first, last + 1):
            if not self._accepts(i):
                continue
            at = len(self._order)
            if 0 <= self._column < self._src().columnCount():
                k = self._key(i)
                keys = [self._key(j) for j in self._order]
                at = (bisect.bisect_right([_Rev(x) for x in keys], _Rev(k)) if self._descending
                      else bisect.bisect_right(keys, k))
            self.beginInsertRows(QModelIndex(), at, at)
            self._order.insert(at, i)
            self._pos = {s: p for p, s in enumerate(self._order)}
            self.endInsertRows()

    def _on_columns_about(self, _parent: Any, first: int, last: int) -> None:
        self.beginInsertColumns(QModelIndex(), first, last)

    def _on_columns_inserted(self, *_: Any) -> None:
        self.endInsertColumns()

    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex, *_: Any) -> None:
        self.dataChanged.emit(self.mapFromSource(top_left), self.mapFromSource(bottom_right))


class _Rev:
    """Reverses comparisons (bisect into a descending list)."""

    __slots__ = ("k",)

    def __init__(self, k: Any) -> None:
        self.k = k

    def __lt__(self, other: _Rev) -> bool:
        return other.k < self.k
