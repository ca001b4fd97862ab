"""Run → Load study: put a study's grid (a data file of ``engine/spec/studies``) into the
experiment panel: its attacks and defences with their presets, its budget and protocol. It runs on
the ticked metric(s), like any other experiment, and its report compares with the study's
reported numbers. Changing the attacks or defences afterwards forgets the study."""
from __future__ import annotations

from typing import Any

from engine.spec.experiment import ComponentSpec


def apply_study(panel: Any, name: str) -> list[str]:
    """Tick exactly the study's components in ``panel``; returns what could not be shown
    (an unknown component, or a second preset of one already ticked).

    Raises:
        engine.spec.studies.StudyError: no such study, or a broken study file.
    """
    from engine.spec.studies import study_experiment_fields

    fields = study_experiment_fields(name)
    skipped: list[str] = []
    for picker, specs in ((panel.attacks, fields["attacks"]), (panel.defences, fields["defences"])):
        wanted: dict[str, ComponentSpec] = {}
        for spec in specs:
            if spec.name not in picker.choices or spec.name in wanted:
                skipped.append(spec.label)
            else:
                wanted[spec.name] = spec
        for cname in list(picker.choices):
            spec = wanted.get(cname)
            if spec is None:
                picker.set_choice(cname, checked=False)
            else:
                picker.set_choice(cname, checked=True, preset=spec.preset or "", params=dict(spec.params))
        picker.show_first_checked()
    panel.options.budget.setCurrentIndex(max(0, panel.options.budget.findData(fields.get("budget"))))
    panel.options.protocol.setCurrentIndex(max(0, panel.options.protocol.findData(fields.get("protocol", "lab"))))
    panel.study = name  # after the pickers' change signals, which forget a study
    return skipped


def add_study_menu(w: Any, run_menu: Any) -> None:
    """Run → Load study ▸ one entry per study file."""
    from engine.spec.studies import list_studies

    menu = run_menu.addMenu("Load study")
    w.study_actions = {}
    for name in list_studies():
        w.study_actions[name] = menu.addAction(name, lambda n=name: w.load_study(n))
