"""The preset drop-down tags the presets that reproduce MSU's published code."""
from __future__ import annotations

from PySide6.QtCore import Qt

from engine.attacks import ATTACKS
from gui.components import LITERAL_TAG, ComponentPicker


def _entries(picker: ComponentPicker) -> dict[str, tuple[str, str]]:
    box = picker.preset
    return {box.itemData(i): (box.itemText(i), box.itemData(i, Qt.ItemDataRole.ToolTipRole) or "")
            for i in range(box.count())}


def test_literal_presets_are_tagged_with_their_reference_file(qtbot):
    picker = ComponentPicker("Attacks", {n: ATTACKS.get(n) for n in ATTACKS.names()})
    qtbot.addWidget(picker)
    picker.select("korhonen")
    entries = _entries(picker)
    text, tip = entries["msu-literal"]
    assert text == f"msu-literal {LITERAL_TAG}"
    assert "korhonen-et-al/run.py" in tip
    # the paper's recipe and the budget levels are not tagged
    assert entries["paper"] == ("paper", "")
    assert entries["eps=4/255"][0] == "eps=4/255"
    # the tag is display only: choosing the preset records its plain label
    picker.set_choice("korhonen", checked=True, preset="msu-literal")
    assert picker.preset.currentText().endswith(LITERAL_TAG)
    assert [(s.name, s.preset) for s in picker.specs()] == [("korhonen", "msu-literal")]
    picker.select("pgd")
    assert not any(LITERAL_TAG in t for t, _ in _entries(picker).values())
