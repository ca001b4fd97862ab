"""Choosing attacks or defences: a checkable list plus preset and parameter editors.

Each registered component keeps its own choice (checked, preset, parameter overrides);
the preset drop-down offers the defaults, every preset the class declares, and "all
presets" (a sweep: one component per preset, i.e. one point per preset in the plots).
Presets an attack lists in ``literal_presets`` are tagged "(MSU code)".
"""
from __future__ import annotations

import html
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.spec.experiment import ComponentSpec
from gui.param_editor import ParamForm

DEFAULTS = ""          # preset combo data: no preset
SWEEP = "*all*"        # preset combo data: one component per preset
LITERAL_TAG = "(MSU code)"  # shown after presets that reproduce MSU's published code


def literal_tooltip(reference: str) -> str:
    """Tooltip of a preset that reproduces MSU's code: which file, and what that means."""
    return (f"Reproduces the numerics of MSU's published code, github.com/msu-video-group/{reference} "
            "(checked against an independent loop in the tests).")


@dataclass
class ComponentChoice:
    name: str
    checked: bool = False
    preset: str = DEFAULTS
    params: dict[str, Any] = field(default_factory=dict)

    def specs(self, presets: dict[str, dict[str, Any]]) -> list[ComponentSpec]:
        if not self.checked:
            return []
        if self.preset == SWEEP:
            return [ComponentSpec(self.name, dict(self.params), p) for p in presets]
        return [ComponentSpec(self.name, dict(self.params), self.preset or None)]

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "preset": self.preset, "params": self.params}


_ROLE = re.compile(r":[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def plain_text(rst: str) -> str:
    """reStructuredText inline markup as plain text: ````h_p(x)```` → h_p(x),
    ``:func:`train_uap``` → train_uap, ``:class:`~a.b.C``` → C, ``**x**`` → x."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1] if "(" not in m.group(1) else m.group(1), rst)
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"(?<![\w`])`([^`]+)`(?!\w)", r"\1", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    return " ".join(text.split())


def description(cls: type, limit: int = 240) -> str:
    """A component's description for the GUI: its docstring's first paragraph in plain
    text, whole sentences only (as many as fit in ``limit`` characters, at least one)."""
    doc = inspect.getdoc(cls) or ""
    text = plain_text(doc.split("\n\n")[0])
    if not text:
        return ""
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text)
    out = sentences[0]
    for sentence in sentences[1:]:
        if len(out) + 1 + len(sentence) > limit:
            break
        out += " " + sentence
    return out if out.endswith((".", "!", "?", ")")) else out + "."


def _list_item(name: str, cls: type) -> QListWidgetItem:
    """A checkable entry: the tooltip has the first doc line, where a plug-in comes from,
    and why the component cannot run here (then it is disabled)."""
    item = QListWidgetItem(name)
    item.setData(Qt.ItemDataRole.UserRole, name)
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Unchecked)
    tip = description(cls)
    plugin = getattr(cls, "plugin", None)
    if plugin:
        item.setText(f"{name}  (plug-in)")
        tip += f"\nplug-in: {plugin}"
    avail = getattr(cls, "availability", None)
    if callable(avail):
        try:
            a = avail()
        except Exception as exc:  # noqa: BLE001 - show, don't crash
            a = None
            tip += f"\nunavailable: {exc}"
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
        if a is not None and a.state != "ready":
            item.setText(f"{name}  ({a.state})")
            tip += f"\n{a.state}: {a.reason}"
            if a.state == "unavailable":
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
    item.setToolTip(tip)
    return item


class ComponentPicker(QWidget):
    """Checkable list of a registry's components with a per-component editor below.

    Args:
        title: group title ("Attacks", "Defences").
        classes: name → component class (with ``Params``/``param_specs``, ``presets`` and
            optionally ``availability()``).
        hidden: names not offered (e.g. the identity defence, always evaluated).
    """

    changed = Signal()

    def __init__(self, title: str, classes: dict[str, type], hidden: tuple[str, ...] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hidden = hidden
        self.classes = {n: c for n, c in sorted(classes.items()) if n not in hidden}
        self.choices = {n: ComponentChoice(n) for n in self.classes}
        self._forms: dict[str, ParamForm] = {}
        self._updating = False

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)

        self.list = QListWidget()
        self.list.setObjectName(f"{title.lower()}_list")
        self.list.setAlternatingRowColors(True)
        self.list.setMinimumHeight(70)
        for name, cls in self.classes.items():
            self.list.addItem(_list_item(name, cls))
        lay.addWidget(self.list, 1)

        self.editor_title = QLabel()
        self.editor_title.setObjectName("editor_title")
        self.editor_title.setWordWrap(True)
        lay.addWidget(self.editor_title)
        head = QFormLayout()
        head.setContentsMargins(0, 0, 0, 0)
        self.preset = QComboBox()
        self.preset.setObjectName("preset")
        self.preset.setToolTip("Presets declared by the component; 'all presets' runs one "
                               "component per preset (a sweep).")
        head.addRow("preset", self.preset)
        lay.addLayout(head)
        self.stack = QStackedWidget()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.stack)
        scroll.setMinimumHeight(110)
        lay.addWidget(scroll, 1)

        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_item_changed)
        self.preset.currentIndexChanged.connect(self._on_preset)
        if self.list.count():
            self.list.setCurrentRow(0)

    def sync(self, classes: dict[str, type]) -> list[str]:
        """Follow the registry after plug-ins were loaded or unloaded: new components get
        an item (in name order), gone ones lose theirs; the names added."""
        classes = {n: c for n, c in classes.items() if n not in self.hidden}
        added = sorted(set(classes) - set(self.classes))
        for name in set(self.classes) - set(classes):
            item = self._item(name)
            if item is not None:
                self.list.takeItem(self.list.row(item))
            self.choices.pop(name, None)
            form = self._forms.pop(name, None)
            if form is not None:
                self.stack.removeWidget(form)
        for name in set(classes) & set(self.classes):
            if classes[name] is not self.classes[name]:  # reloaded: a fresh editor
                form = self._forms.pop(name, None)
                if form is not None:
                    self.stack.removeWidget(form)
        self.classes = dict(sorted(classes.items()))
        for name in added:
            self.choices[name] = ComponentChoice(name)
            row = sorted(self.classes).index(name)
            self.list.insertItem(row, _list_item(name, self.classes[name]))
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        self.changed.emit()
        return added

    # ---- state ---------------------------------------------------------------------------
    def current_name(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _item(self, name: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            it = self.list.item(i)
            if it.data(Qt.ItemDataRole.UserRole) == name:
                return it
        return None

    def _base(self, name: str, preset: str) -> dict[str, Any]:
        cls = self.classes[name]
        base = {s.name: s.default for s in cls.param_specs()}
        if preset and preset != SWEEP:
            base.update(cls.presets.get(preset, {}))
        return base

    def _form(self, name: str) -> ParamForm:
        if name not in self._forms:
            form = ParamForm(self.classes[name].param_specs())
            form.changed.connect(self._on_form_changed)
            self._forms[name] = form
            self.stack.addWidget(form)
        return self._forms[name]

    def _show(self, name: str) -> None:
        self._updating = True
        try:
            choice = self.choices[name]
            cls = self.classes[name]
            self.editor_title.setText(f"<b>{html.escape(name)}</b> — {html.escape(description(cls))}")
            self.preset.clear()
            self.preset.addItem("defaults", DEFAULTS)
            literal = getattr(cls, "literal_presets", {})
            for label in cls.presets:
                self.preset.addItem(f"{label} {LITERAL_TAG}" if label in literal else label, label)
                if label in literal:
                    self.preset.setItemData(self.preset.count() - 1, literal_tooltip(literal[label]),
                                            Qt.ItemDataRole.ToolTipRole)
            if len(cls.presets) > 1:
                self.preset.addItem(f"all {len(cls.presets)} presets (sweep)", SWEEP)
            idx = self.preset.findData(choice.preset)
            self.preset.setCurrentIndex(max(0, idx))
            self.preset.setEnabled(bool(cls.presets))
            form = self._form(name)
            form.set_values({**self._base(name, choice.preset), **choice.params})
            self.stack.setCurrentWidget(form)
        finally:
            self._updating = False

    def _on_current(self, cur: QListWidgetItem | None, _prev: Any = None) -> None:
        if cur is not None:
            self._show(cur.data(Qt.ItemDataRole.UserRole))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        self.choices[name].checked = item.checkState() == Qt.CheckState.Checked
        if self.choices[name].checked and self.current_name() != name:
            self.list.setCurrentItem(item)   # the editor shows what was just ticked
        self.changed.emit()

    def _on_preset(self, _idx: int) -> None:
        name = self.current_name()
        if self._updating or name is None:
            return
        choice = self.choices[name]
        choice.preset = self.preset.currentData() or DEFAULTS
        choice.params = {}
        self._updating = True
        try:
            self._form(name).set_values(self._base(name, choice.preset))
        finally:
            self._updating = False
        self.changed.emit()

    def _on_form_changed(self) -> None:
        name = self.current_name()
        if self._updating or name is None:
            return
        choice = self.choices[name]
        choice.params = self._form(name).overrides(self._base(name, choice.preset))
        self.changed.emit()

    # ---- public API ----------------------------------------------------------------------
    def specs(self) -> list[ComponentSpec]:
        out: list[ComponentSpec] = []
        for name, choice in self.choices.items():
            out.extend(choice.specs(self.classes[name].presets))
        return out

    def set_choice(self, name: str, *, checked: bool = True, preset: str = DEFAULTS,
                   params: dict[str, Any] | None = None) -> None:
        if name not in self.choices:
            return
        self.choices[name] = ComponentChoice(name, checked, preset or DEFAULTS, dict(params or {}))
        item = self._item(name)
        if item is not None:
            self._updating = True
            try:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            finally:
                self._updating = False
        if self.current_name() == name:
            self._show(name)
        self.changed.emit()

    def select(self, name: str) -> None:
        item = self._item(name)
        if item is not None:
            self.list.setCurrentItem(item)

    def state(self) -> dict[str, Any]:
        return {n: c.to_dict() for n, c in self.choices.items() if c.checked or c.params or c.preset}

    def set_state(self, state: dict[str, Any]) -> None:
        for name in list(self.choices):
            d = state.get(name)
            if d is None:
                if self.choices[name].checked:
                    self.set_choice(name, checked=False)
                continue
            self.set_choice(name, checked=bool(d.get("checked")), preset=d.get("preset") or DEFAULTS,
                            params=d.get("params") or {})
        self.show_first_checked()

    def show_first_checked(self) -> None:
        """Edit the first ticked component (unless the one shown is ticked)."""
        cur = self.current_name()
        if cur is not None and self.choices[cur].checked:
            return
        first = next((n for n, c in self.choices.items() if c.checked), None)
        if first is not None:
            self.select(first)
