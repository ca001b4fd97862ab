"""Editors built from typed parameter definitions, presets and sweeps."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from engine.attacks import ATTACKS
from engine.defences import DEFENCES
from engine.spec.params import make_params
from gui.components import SWEEP, ComponentPicker
from gui.param_editor import ParamForm


def test_form_editors_follow_the_parameter_types_and_bounds(qtbot):
    cls = ATTACKS.get("ifgsm")
    form = ParamForm(cls.param_specs())
    qtbot.addWidget(form)
    eps = form.editor("eps")
    assert isinstance(eps, QDoubleSpinBox) and isinstance(form.editor("iters"), QSpinBox)
    assert isinstance(form.editor("keep_best"), QCheckBox)
    assert eps.value() == pytest.approx(10.0)           # shown as N/255
    assert eps.maximum() == pytest.approx(255.0)
    assert "L∞ budget" in eps.toolTip()
    assert form.editor("iters").minimum() == 1
    eps.setValue(4.0)
    form.editor("iters").setValue(25)
    values = form.values()
    assert values["eps"] == pytest.approx(4 / 255) and values["iters"] == 25
    make_params(cls.Params, values)  # the engine accepts what the editor produces
    assert form.overrides(form.defaults()) == {"eps": pytest.approx(4 / 255), "iters": 25}


def test_choices_become_a_combo_box(qtbot):
    from dataclasses import dataclass

    from engine.spec.params import param

    @dataclass
    class P:
        mode: str = param("bilinear", choices=["nearest", "bilinear", "bicubic"], help="interpolation")

    form = ParamForm([*__import__("engine.spec.params", fromlist=["param_specs"]).param_specs(P)])
    qtbot.addWidget(form)
    box = form.editor("mode")
    assert isinstance(box, QComboBox) and box.count() == 3 and box.currentText() == "bilinear"
    box.setCurrentIndex(2)
    assert form.values() == {"mode": "bicubic"}


def test_picker_presets_and_sweep(qtbot):
    picker = ComponentPicker("Defences", {n: DEFENCES.get(n) for n in DEFENCES.names()}, hidden=("none",))
    qtbot.addWidget(picker)
    assert "none" not in picker.choices
    picker.set_choice("jpeg", checked=True, preset="q=30")
    picker.select("jpeg")
    assert picker._form("jpeg").values()["q"] == 30
    assert [(s.name, s.preset, s.params) for s in picker.specs()] == [("jpeg", "q=30", {})]
    # editing a value on top of a preset records only the difference
    picker._form("jpeg").editor("q").setValue(35)
    assert picker.specs()[0].params == {"q": 35}
    picker.set_choice("jpeg", checked=True, preset=SWEEP)
    specs = picker.specs()
    assert [s.preset for s in specs] == list(DEFENCES.get("jpeg").presets)
    assert len({s.label for s in specs}) == 10  # MSU's five qualities, ours and MSU's code's
