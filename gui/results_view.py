"""The Results tab: experiment chooser, filter, row count, the table and its column chooser."""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QPoint, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.columns import PRESETS, certified_summary, column_title, preset_columns
from gui.elided_label import ElidedLabel
from gui.results_model import ResultsModel, ResultsProxy


class ResultsView(QWidget):
    """Rows of the experiment shown; the user picks rows, an experiment, the columns.

    Signals:
        experimentChosen(str): an experiment id picked in the combo.
        rowChosen(str, str): item id and defence label of the row picked.
    """

    experimentChosen = Signal(str)
    rowChosen = Signal(str, str)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.model = ResultsModel(self)
        self.proxy = ResultsProxy(self)
        self.proxy.setSourceModel(self.model)
        self.preset = "summary"
        self.hidden_columns: set[str] = set()
        self.extra_columns: set[str] = set()
        self._columns_sized = False
        self._sized_columns: set[str] = set()   # columns whose width came from their text

        self.table = QTableView()
        self.table.setObjectName("results_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row sizing
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setDefaultSectionSize(92)
        # a long title is cut at its end, its start stays readable ("defended attacked M(D(xₐ))")
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_menu)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.selectionModel().currentRowChanged.connect(self._on_row)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("experiment"))
        self.combo = QComboBox()
        self.combo.setObjectName("experiment_combo")
        self.combo.setMinimumContentsLength(8)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.activated.connect(self._on_combo)
        bar.addWidget(self.combo, 2)
        bar.addWidget(QLabel("filter"))
        self.filter = QLineEdit()
        self.filter.setObjectName("results_filter")
        self.filter.setPlaceholderText("text in the text columns, e.g. jpeg or astronaut")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter)
        self.filter.setMinimumWidth(self.filter.fontMetrics().horizontalAdvance("astronaut") + 40)
        bar.addWidget(self.filter, 3)
        self._certified: tuple[Any, str] = (None, "")
        self._note = ""   # e.g. "3 reused from the store": said beside the row count
        # the certificate summary can be long: elided, never widening the window
        self.rows_label = ElidedLabel("0 rows", min_width=self.fontMetrics().horizontalAdvance("99 of 99 rows"))
        self.rows_label.setObjectName("rows_label")
        bar.addWidget(self.rows_label, 2)
        self.columns_button = QToolButton()
        self.columns_button.setObjectName("columns_button")
        self.columns_button.setText("Columns ▾")
        self.columns_button.setToolTip("Choose the columns (also: right-click the header)")
        self.columns_button.clicked.connect(self._on_columns_button)
        bar.addWidget(self.columns_button)
        lay.addLayout(bar)
        lay.addWidget(self.table, 1)

        for sig in (self.proxy.modelReset, self.proxy.layoutChanged, self.proxy.rowsInserted, self.proxy.rowsRemoved):
            sig.connect(self._update_count)
        self.model.columnsInserted.connect(self._apply_columns)
        self.model.modelReset.connect(self._apply_columns)
        self._restore()

    # ---- experiments -------------------------------------------------------------------
    def set_experiments(self, entries: list[tuple[str, str]], current: str | None) -> None:
        """Fill the combo; ``current`` (the experiment shown) is the one selected."""
        self.combo.blockSignals(True)
        self.combo.clear()
        for exp_id, text in entries:
            self.combo.addItem(text, exp_id)
        self.combo.setCurrentIndex(max(0, self.combo.findData(current)) if entries else -1)
        self.combo.blockSignals(False)

    def current_experiment(self) -> str | None:
        return self.combo.currentData()

    @Slot(int)
    def _on_combo(self, index: int) -> None:
        exp_id = self.combo.itemData(index)
        if exp_id:
            self.experimentChosen.emit(exp_id)

    # ---- rows --------------------------------------------------------------------------
    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.model.set_rows(rows)
        self._columns_sized = False
        self._size_soon()

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        self.model.add_rows(rows)
        self._size_soon()

    def _size_soon(self) -> None:
        if not self._columns_sized and self.model.rowCount():
            # once, from the first rows: sizing every column on every item costs ~50 ms
            self._columns_sized = True
            QTimer.singleShot(0, self._size_columns)

    def _size_columns(self, columns: list[int] | None = None) -> None:
        """Widths from the header and the first rows' text (cheap, unlike
        resizeColumnsToContents), of the columns shown (default; a hidden one is sized
        when it is shown)."""
        header = self.table.horizontalHeader()
        fm = self.table.fontMetrics()
        n = min(12, self.model.rowCount())
        if columns is None:
            self._sized_columns = set()
            columns = [c for c in range(len(self.model.columns)) if not self.table.isColumnHidden(c)]
        for c in columns:
            name = self.model.columns[c]
            texts = [column_title(name)] + [self.model.data(self.model.index(r, c)) or "" for r in range(n)]
            w = max(fm.horizontalAdvance(str(t)) for t in texts) + 24
            header.resizeSection(c, max(56, min(w, 220)))
            self._sized_columns.add(name)

    @Slot()
    def _update_count(self, *_: Any) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        text = f"{shown} rows" if shown == total else f"{shown} of {total} rows"
        key = (id(self.model.rows), total)
        if self._certified[0] != key:  # recounted when the rows change, not on every filter
            self._certified = (key, certified_summary(self.model.rows))
        self.rows_label.setText(text + "".join(f" · {t}" for t in (self._note, self._certified[1]) if t))

    def set_note(self, text: str) -> None:
        """A note beside the row count (how many rows the store held before the run)."""
        if text != self._note:
            self._note = text
            self._update_count()

    @Slot(str)
    def _on_filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)

    def visible_rows(self) -> list[dict[str, Any]]:
        return [self.model.row(self.proxy.mapToSource(self.proxy.index(i, 0)).row())
                for i in range(self.proxy.rowCount())]

    @Slot(object, object)
    def _on_row(self, current: Any, _previous: Any = None) -> None:
        if not current.isValid():
            return
        row = self.model.row(self.proxy.mapToSource(current).row())
        if row.get("item_id"):
            self.rowChosen.emit(row["item_id"], row.get("defence_label") or "")

    def select_item(self, item_id: str, defence: str | None = None) -> bool:
        """Select the (first) row of ``item_id`` without emitting :attr:`rowChosen`."""
        rows = self.model.rows
        matches = [i for i, r in enumerate(rows) if r.get("item_id") == item_id
                   and (defence is None or r.get("defence_label") == defence)]
        shown = [p.row() for p in (self.proxy.mapFromSource(self.model.index(i, 0)) for i in matches) if p.isValid()]
        if not shown:
            return False
        i = min(shown)
        self.table.selectionModel().blockSignals(True)
        self.table.selectRow(i)
        self.table.selectionModel().blockSignals(False)
        self.table.scrollTo(self.proxy.index(i, 0))
        return True

    def selected_row(self) -> dict[str, Any] | None:
        idx = self.table.selectionModel().currentIndex()
        return self.model.row(self.proxy.mapToSource(idx).row()) if idx.isValid() else None

    # ---- columns -----------------------------------------------------------------------
    def columns_menu(self) -> QMenu:
        """Presets, then one checkable entry per column."""
        menu = QMenu(self)
        menu.setObjectName("columns_menu")
        for name in PRESETS:
            act = menu.addAction(f"preset: {name}")
            act.setCheckable(True)
            act.setChecked(name == self.preset and not (self.hidden_columns or self.extra_columns))
            act.setData(("preset", name))
            act.triggered.connect(self._on_column_action)
        menu.addSeparator()
        for i, key in enumerate(self.model.columns):
            act = menu.addAction(column_title(key))
            act.setCheckable(True)
            act.setChecked(not self.table.isColumnHidden(i))
            act.setData(("column", key))
            act.triggered.connect(self._on_column_action)
        return menu

    @Slot(QPoint)
    def _on_header_menu(self, pos: QPoint) -> None:
        self.columns_menu().popup(self.table.horizontalHeader().mapToGlobal(pos))

    @Slot()
    def _on_columns_button(self) -> None:
        self.columns_menu().popup(self.columns_button.mapToGlobal(QPoint(0, self.columns_button.height())))

    @Slot()
    def _on_column_action(self) -> None:
        act = self.sender()
        kind, value = act.data()
        if kind == "preset":
            self.set_preset(value)
        else:
            self.set_column_visible(value, act.isChecked())

    def set_preset(self, name: str) -> None:
        """Show the columns of a preset (summary, gains, quality, pair measures, timing, all)."""
        if name not in PRESETS:
            return
        self.preset = name
        self.hidden_columns, self.extra_columns = set(), set()
        self._apply_columns()
        self._save()

    def set_column_visible(self, key: str, visible: bool) -> None:
        """Show or hide one column on top of the preset."""
        if visible:
            self.hidden_columns.discard(key)
            self.extra_columns.add(key)
        else:
            self.hidden_columns.add(key)
            self.extra_columns.discard(key)
        self._apply_columns()
        self._save()

    def shown_columns(self) -> list[str]:
        return [k for i, k in enumerate(self.model.columns) if not self.table.isColumnHidden(i)]

    @Slot()
    def _apply_columns(self, *_: Any) -> None:
        wanted = set(preset_columns(self.preset, self.model.columns)) | self.extra_columns
        shown = []
        for i, key in enumerate(self.model.columns):
            hide = key in self.hidden_columns or key not in wanted
            self.table.setColumnHidden(i, hide)
            if not hide and self._columns_sized and key not in self._sized_columns:
                shown.append(i)
        if shown and self.model.rowCount():
            self._size_columns(shown)   # shown now, never sized

    def _save(self) -> None:
        if self.settings is not None:
            self.settings.setValue("resultColumns", json.dumps({"preset": self.preset,
                                                                "hidden": sorted(self.hidden_columns),
                                                                "extra": sorted(self.extra_columns)}))

    def _restore(self) -> None:
        raw = self.settings.value("resultColumns") if self.settings is not None else None
        try:
            state = json.loads(str(raw)) if raw else {}
        except ValueError:
            state = {}
        self.preset = state.get("preset", "summary") if state.get("preset") in PRESETS else "summary"
        self.hidden_columns = set(state.get("hidden", []))
        self.extra_columns = set(state.get("extra", []))
        self._apply_columns()
