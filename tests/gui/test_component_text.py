"""Component descriptions are plain text in whole sentences (issue 22, item 4)."""
from __future__ import annotations

import re

from gui.catalog import attack_classes, defence_classes
from gui.components import ComponentPicker, description, plain_text


def test_every_description_is_plain_text_and_whole_sentences():
    for name, cls in {**attack_classes(), **defence_classes()}.items():
        text = description(cls)
        assert text, name
        assert "`" not in text and not re.search(r":[a-z]+:", text) and "**" not in text, (name, text)
        assert text.rstrip(")").endswith((".", "!", "?")) or text.endswith(")"), (name, text)
        # the first sentence is never cut: it is the start of the docstring's first paragraph
        first = plain_text((cls.__doc__ or "").strip().split("\n\n")[0])
        assert first.startswith(text[:-1].split(". ")[0]) or not cls.__doc__, (name, text)
    assert plain_text("``h_p(x)`` from :func:`engine.a.train_uap` and :class:`~a.b.Store`") == \
        "h_p(x) from train_uap and Store"


def test_the_editor_shows_the_whole_description(qtbot):
    picker = ComponentPicker("Defences", defence_classes(), hidden=("none",))
    qtbot.addWidget(picker)
    picker.select("median-smoothing")
    text = picker.editor_title.text()
    assert "``" not in text and "h_p(x)" in text and "seeded samples." in text
