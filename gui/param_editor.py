"""Parameter editors built from the typed parameter definitions (engine.spec.params).

A component (attack, defence, metric) declares a parameter dataclass; :class:`ParamForm`
turns its :class:`~engine.spec.params.ParamSpec` list into spin boxes, check boxes, combo boxes
and line edits with bounds and help tooltips. No component needs GUI code of its own.
"""
from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from engine.spec.params import ParamSpec

INT_LIMIT = 2_147_483_647
#: units whose values are shown multiplied by 255 (budgets written as N/255)
SCALE_255_UNITS = ("×255", "x255", "/255")


def display_scale(spec: ParamSpec) -> float:
    return 255.0 if spec.unit in SCALE_255_UNITS else 1.0


def _decimals(spec: ParamSpec, scale: float) -> int:
    step = (spec.step or 0.0) * scale
    if step and step > 0:
        return max(2, min(6, int(math.ceil(-math.log10(step))) + 2))
    return 4


def _tooltip(spec: ParamSpec) -> str:
    parts = [f"<b>{spec.name}</b>"]
    if spec.help:
        parts.append(spec.help)
    bounds = []
    if spec.min is not None:
        bounds.append(f"min {spec.min:g}")
    if spec.max is not None:
        bounds.append(f"max {spec.max:g}")
    if bounds:
        parts.append(", ".join(bounds) + (" (values shown ×255)" if display_scale(spec) != 1 else ""))
    if spec.choices:
        parts.append("one of: " + ", ".join(map(str, spec.choices)))
    parts.append(f"default: {spec.default!r}")
    return "<br>".join(parts)


def _auto_text(spec: ParamSpec) -> str:
    """What the minimum means when the help says "0 = …": bilateral's sigma space shows
    "0 = from k (OpenCV's rule)", not "0.000 px"."""
    help_text = spec.help or ""
    if spec.min != 0 or "0 =" not in help_text:
        return ""
    meaning = help_text.split("0 =", 1)[1].split(";")[0].split(",")[0].strip()
    if meaning.count(")") > meaning.count("("):
        meaning = meaning[:meaning.rfind(")")].strip()
    return f"0 = {meaning}" if meaning else ""


def _parse_text(text: str) -> Any:
    from engine.spec.experiment import parse_scalar

    text = text.strip()
    if not text or text.lower() == "none":
        return None
    return parse_scalar(text)


class ParamForm(QWidget):
    """A form of editors for one parameter dataclass.

    Signals:
        changed: emitted when the user edits any value.

    Example:
        >>> form = ParamForm(IFGSM.param_specs())
        >>> form.set_values({"eps": 4 / 255})
        >>> form.values()["eps"]
    """

    changed = Signal()

    def __init__(self, specs: list[ParamSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = list(specs)
        self._editors: dict[str, QWidget] = {}
        self._setting = False
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        if not self.specs:
            layout.addRow(QLabel("<i>no parameters</i>"))
        for spec in self.specs:
            editor = self._make_editor(spec)
            editor.setObjectName(f"param_{spec.name}")
            tip = _tooltip(spec)
            editor.setToolTip(tip)
            label = QLabel(spec.name.replace("_", " "))
            label.setToolTip(tip)
            layout.addRow(label, editor)
            self._editors[spec.name] = editor
        self.set_values({})

    # ---- construction ------------------------------------------------------------------
    def _make_editor(self, spec: ParamSpec) -> QWidget:
        if spec.choices:
            box = QComboBox()
            for c in spec.choices:
                box.addItem(str(c), c)
            box.currentIndexChanged.connect(self._on_changed)
            return box
        if spec.type is bool:
            check = QCheckBox()
            check.toggled.connect(self._on_changed)
            return check
        if spec.type is int and spec.default is not None:
            spin = QSpinBox()
            spin.setRange(int(spec.min) if spec.min is not None else -INT_LIMIT,
                          int(spec.max) if spec.max is not None else INT_LIMIT)
            if spec.step:
                spin.setSingleStep(max(1, int(spec.step)))
            if spec.unit:
                spin.setSuffix(f" {spec.unit}")
            spin.valueChanged.connect(self._on_changed)
            return spin
        if spec.type is float and spec.default is not None:
            scale = display_scale(spec)
            spin = QDoubleSpinBox()
            spin.setDecimals(_decimals(spec, scale))
            lo = spec.min * scale if spec.min is not None else -1e9
            hi = spec.max * scale if spec.max is not None else 1e9
            spin.setRange(lo, hi)
            if spec.step:
                spin.setSingleStep(spec.step * scale)
            else:
                spin.setSingleStep(0.1 if hi - lo > 1 else 0.01)
            if scale != 1.0:
                spin.setSuffix(" /255")
            elif spec.unit:
                spin.setSuffix(f" {spec.unit}")
            auto = _auto_text(spec)
            if auto:
                spin.setSpecialValueText(auto)
            spin.valueChanged.connect(self._on_changed)
            return spin
        edit = QLineEdit()
        edit.setPlaceholderText("none" if spec.default is None else str(spec.default))
        edit.editingFinished.connect(self._on_changed)
        return edit

    def _on_changed(self, *_: Any) -> None:
        if not self._setting:
            self.changed.emit()

    # ---- values ------------------------------------------------------------------------
    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.specs}

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (missing names show their default) without emitting ``changed``."""
        self._setting = True
        try:
            for spec in self.specs:
                self._set_one(spec, values.get(spec.name, spec.default))
        finally:
            self._setting = False

    def _set_one(self, spec: ParamSpec, value: Any) -> None:
        editor = self._editors[spec.name]
        if isinstance(editor, QComboBox):
            idx = editor.findData(value)
            editor.setCurrentIndex(max(0, idx))
        elif isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value))
        elif isinstance(editor, QDoubleSpinBox):
            editor.setValue(float(value) * display_scale(spec))
        elif isinstance(editor, QLineEdit):
            editor.setText("" if value is None else str(value))

    def values(self) -> dict[str, Any]:
        """Every parameter's current value, in the dataclass's units."""
        out: dict[str, Any] = {}
        for spec in self.specs:
            editor = self._editors[spec.name]
            if isinstance(editor, QComboBox):
                out[spec.name] = editor.currentData()
            elif isinstance(editor, QCheckBox):
                out[spec.name] = editor.isChecked()
            elif isinstance(editor, QSpinBox):
                out[spec.name] = editor.value()
            elif isinstance(editor, QDoubleSpinBox):
                out[spec.name] = editor.value() / display_scale(spec)
            else:
                out[spec.name] = _parse_text(editor.text())
        return out

    def overrides(self, base: dict[str, Any]) -> dict[str, Any]:
        """The values that differ from ``base`` (defaults merged with a preset's overrides)."""
        values = self.values()
        out = {}
        for spec in self.specs:
            value, ref = values[spec.name], base.get(spec.name)
            if isinstance(value, float) and isinstance(ref, (int, float)) and not isinstance(ref, bool):
                scale = display_scale(spec)
                if abs(value - float(ref)) <= 0.5 * 10 ** -_decimals(spec, scale) / scale:
                    continue
            elif value == ref:
                continue
            out[spec.name] = value
        return out

    def editor(self, name: str) -> QWidget:
        return self._editors[name]
