"""One-command studies: a study is a data file (``engine/studies/NAME.json``), not code.

A study file names its attacks and defences (the CLI's ``name[preset]`` / ``name:k=v``
forms), optionally a default metric and budget, and what its source reported
(``reported``: per defence, the quality and the gain left, over all attacks).
:func:`study_experiment_fields` expands it into experiment fields; after the run,
:func:`compare_study` puts the reported numbers beside the measured ones and marks the
differences larger than the study's tolerance.
"""
from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from engine.experiment import ComponentSpec
from engine.report.labels import component_label

QUALITY, GAIN = "quality_score", "robust_abs_gain"


class StudyError(ValueError):
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
    :class:`engine.experiment.Experiment`."""
    study = load_study(name)
    try:
        attacks = [ComponentSpec.parse(a) for a in study["attacks"]]
        defences = [ComponentSpec.parse(d) for d in study["defences"]]
    except ValueError as exc:
        raise StudyError(f"study file {name}.json: {exc}") from None
    protocol = study.get("protocol", "lab")
    if protocol not in ("lab", "msu"):
        raise StudyError(f"study file {name}.json: unknown protocol {protocol!r} (lab or msu)")
    return {"metrics": [ComponentSpec.parse(study["metric"])] if study.get("metric") else [],
            "attacks": attacks, "defences": defences, "budget": study.get("budget"), "study": name,
            "protocol": protocol}


def _label(spec: str) -> str:
    cs = ComponentSpec.parse(spec)
    return component_label(cs.name, cs.preset_label)


def _srocc(a: list[float], b: list[float]) -> float | None:
    from engine.evaluation.correlation import srocc

    v = srocc(a, b)
    return None if math.isnan(v) else v


def compare_study(name: str, summary: list[dict[str, Any]], metric: str | None = None) -> dict[str, Any] | None:
    """Reported vs measured (all attacks pooled) per defence, for the report.

    Args:
        name: the study.
        summary: :func:`engine.export.summarise` rows.
        metric: which metric's numbers (default: the first in the summary).

    Returns:
        None when the study reports nothing; else ``title``, ``description``, ``source``,
        ``tolerance``, ``shape`` (the source's words, plus the rank agreement measured) and
        ``rows`` (reported/measured quality and gain, their differences and ``*_cls``
        ``diff-big``/``diff-ok``).
    """
    try:
        study = load_study(name)
    except StudyError:
        return None
    reported = study.get("reported") or []
    if not reported:
        return None
    metric = metric or next((str(s["metric"]) for s in summary), None)
    measured: dict[str, dict[str, dict[str, Any]]] = {}
    for s in summary:
        if s.get("attack") == "total" and str(s.get("metric")) == metric and s["score"] in (QUALITY, GAIN):
            measured.setdefault(component_label(s.get("defence"), s.get("defence_preset")), {})[s["score"]] = s
    tol = float(study.get("tolerance", 0.05))
    rows = []
    for r in reported:
        label = _label(r["defence"])
        m = measured.get(label, {})
        row: dict[str, Any] = {"defence": label, "reported_quality": r.get("quality"), "reported_gain": r.get("gain")}
        for key, score in (("quality", QUALITY), ("gain", GAIN)):
            s = m.get(score) or {}
            v, ref = s.get("value"), r.get(key)
            row[key] = v
            row[f"{key}_ci"] = (f"[{s['ci_low']:.3g}, {s['ci_high']:.3g}]" if s.get("ci_low") is not None else "")
            d = v - ref if v is not None and ref is not None else None
            row[f"d_{key}"] = d
            row[f"{key}_cls"] = "" if d is None else ("diff-big" if abs(d) > tol else "diff-ok")
        rows.append(row)
    both = [r for r in rows if r["gain"] is not None and r["quality"] is not None]
    shape = study.get("shape", "")
    if len(both) >= 3:
        sg = _srocc([r["reported_gain"] for r in both], [r["gain"] for r in both])
        sq = _srocc([r["reported_quality"] for r in both], [r["quality"] for r in both])
        shape += (f" Measured here on {metric}, {len(both)} defences in common: rank agreement (SROCC) with "
                  f"the reported gain {'–' if sg is None else f'{sg:.2f}'}, quality "
                  f"{'–' if sq is None else f'{sq:.2f}'}.")
    return {"title": study.get("title", name), "description": study.get("description", ""),
            "source": study.get("source", ""), "tolerance": tol, "shape": shape, "rows": rows}
