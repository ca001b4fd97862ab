"""A study's reported numbers beside the measured ones (for the report).

The study file (:mod:`engine.spec.studies`) gives, per defence, the quality and the gain
its source reported; this puts the measured means (all attacks pooled) beside them and
marks the differences larger than the study's tolerance.
"""
from __future__ import annotations

import math
from typing import Any

from engine.core.labels import component_label
from engine.evaluation.correlation import srocc
from engine.spec.experiment import ComponentSpec
from engine.spec.studies import StudyError, load_study

QUALITY, GAIN = "quality_score", "robust_abs_gain"


def _label(spec: str) -> str:
    cs = ComponentSpec.parse(spec)
    return component_label(cs.name, cs.preset_label)


def _srocc(a: list[float], b: list[float]) -> float | None:
    v = srocc(a, b)
    return None if math.isnan(v) else v


def compare_study(name: str, summary: list[dict[str, Any]], metric: str | None = None) -> dict[str, Any] | None:
    """Reported vs measured (all attacks pooled) per defence, for the report.

    Args:
        name: the study.
        summary: :func:`engine.evaluation.tables.summarise` rows.
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
