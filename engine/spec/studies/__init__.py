"""One-command studies: a study is a data file (``engine/spec/studies/NAME.json``), not code.

A study file names its attacks and defences (the CLI's ``name[preset]`` / ``name:k=v``
forms), optionally a default metric and budget, and what its source reported
(``reported``: per defence, the quality and the gain left, over all attacks).
:func:`study_experiment_fields` expands it into experiment fields; after the run,
:func:`engine.evaluation.study_compare.compare_study` puts the reported numbers beside
the measured ones.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

from engine.core.errors import ExpectedError
from engine.spec.experiment import ComponentSpec
from engine.spec.protocols import PROTOCOLS

class StudyError(ExpectedError, ValueError):
    """Unknown study, or a study file that cannot be read."""


def list_studies() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".json"))


def load_study(name: str) -> dict[str, Any]:
    """The study's definition (the parsed JSON file)."""
    if name not in list_studies():
        raise StudyError(f"unknown study {name!r}; known: {', '.join(list_studies())}")
    try:
        study = json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise StudyError(f"study file {name}.json is not valid JSON: {exc}") from None
    for key in ("attacks", "defences"):
        if not isinstance(study.get(key), list) or not study[key]:
            raise StudyError(f"study file {name}.json: {key!r} must be a non-empty list")
    return study


def study_experiment_fields(name: str) -> dict[str, Any]:
    """``metrics`` (the study's default metric, if any), ``attacks``, ``defences``, ``budget``,
    ``study`` and ``protocol`` (the study's, default ``lab``) for an
    :class:`engine.spec.experiment.Experiment`."""
    study = load_study(name)
    try:
        attacks = [ComponentSpec.parse(a) for a in study["attacks"]]
        defences = [ComponentSpec.parse(d) for d in study["defences"]]
    except ValueError as exc:
        raise StudyError(f"study file {name}.json: {exc}") from None
    protocol = study.get("protocol", "lab")
    if protocol not in PROTOCOLS:
        raise StudyError(f"study file {name}.json: unknown protocol {protocol!r} (lab or msu)")
    return {"metrics": [ComponentSpec.parse(study["metric"])] if study.get("metric") else [],
            "attacks": attacks, "defences": defences, "budget": study.get("budget"), "study": name,
            "protocol": protocol}
