"""The report's HTML: one self-contained page (inline CSS, images as data URIs, no network).

The page's structure lives in Jinja2 templates (``engine/results/report/templates``: ``page.html.j2``
and one template per section) rendered with autoescaping, so every string that comes from
a run (labels, file names, errors, parameters) is escaped. This module only prepares what
the templates show (which cells are best, how blocks group) and renders them.
"""
from __future__ import annotations

import html
import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from engine.results.report.data import ReportData
from engine.results.report.figures import SavedFigure
from engine.core.labels import (
    MAIN_SCORES,
    as_float,
    component_label,
    fmt,
    score_help,
    score_title,
)
from engine.results.report.manifest import component_rows, setup_rows, version_rows
from engine.results.report.plots import attack_label

CSS_PX_PER_INCH = 110  # above 96 so 8.5-pt figure text reads like the 13-px body text

# Sets a marker on <html> for any script error; tests read it from Chromium's dumped DOM.
ERROR_HOOK = ("window.__reportErrors=[];window.onerror=function(m,s,l){window.__reportErrors.push(String(m));"
              "document.documentElement.setAttribute('data-js-errors',String(window.__reportErrors.length));};")
RENDERED_MARK = "document.body.setAttribute('data-rendered','ok');"


def _wbr(v: Any) -> Markup:
    """An escaped component label that may break after ``[`` and ``,`` in narrow columns."""
    return Markup(html.escape("" if v is None else str(v), quote=True).replace("[", "[<wbr>").replace(",", ",<wbr>"))


def _kv_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v if v is not None else "–")
    if isinstance(v, float):
        return fmt(v, 6)
    return str(v)


def param_value(v: Any, unit: str = "") -> str:
    """A parameter for display; ``×255`` budgets read as ``10/255``."""
    if unit == "×255" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v * 255:.4g}/255"
    return (fmt(v, 6) if isinstance(v, float) else str(v)) + (f" {unit}" if unit and unit != "×255" else "")


def _finalize(v: Any) -> Any:
    """None prints as nothing; text is escaped as :func:`html.escape` does (``&quot;``, the
    entities the page always used); markup from filters and sections passes through."""
    if v is None:
        return ""
    if isinstance(v, Markup) or hasattr(v, "__html__"):
        return v
    return Markup(html.escape(str(v), quote=True))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("engine.results.report", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True, finalize=_finalize)
    env.filters.update(fmt=fmt, wbr=_wbr, kvvalue=_kv_value, param_value=param_value,
                       reprfloat=lambda v: repr(v) if isinstance(v, float) else "")
    return env


def render(template: str, **context: Any) -> Markup:
    """Render one template to markup (safe to insert into another template)."""
    return Markup(environment().get_template(template).render(**context))


def _grouped(summary: list[dict[str, Any]]) -> OrderedDict[str, OrderedDict[tuple, dict[str, Any]]]:
    """metric → (attack, attack_preset, defence, defence_preset) → {score: summary row, _row, _count}."""
    out: OrderedDict[str, OrderedDict[tuple, dict[str, Any]]] = OrderedDict()
    for s in summary:
        key = (s.get("attack"), s.get("attack_preset"), s.get("defence"), s.get("defence_preset"))
        g = out.setdefault(str(s.get("metric")), OrderedDict()).setdefault(key, {"_row": s, "_count": 0})
        g[str(s["score"])] = s
        if s["score"] == "robust_abs_gain" or not g["_count"]:  # images behind the key score
            g["_count"] = int(s.get("count") or 0)
    return out


BEST = (("robust_abs_gain", min), ("quality_score", max), ("robustness", max), ("similarity_score", max),
        ("both_defended_abs_gain", min), ("gain_removed", max))


def _ci_text(s: dict[str, Any] | None) -> str:
    if not s:
        return ""
    if s.get("ci_low") is None:
        return f"no interval: {s.get('ci_note')}" if s.get("ci_note") else ""
    return f"95 % interval [{fmt(s['ci_low'])}, {fmt(s['ci_high'])}] ({s.get('ci_method')}, n = {s.get('count')})"


def summary_blocks(summary: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Per metric, the main table's rows (cells with best flags and intervals) and its columns."""
    scores_present = list(OrderedDict.fromkeys(str(s["score"]) for s in summary))
    with_values = {str(s["score"]) for s in summary if s.get("value") is not None}
    main = [s for s in MAIN_SCORES if s in scores_present and s in with_values]
    blocks_out = []
    for metric, groups in _grouped(summary).items():
        blocks: OrderedDict[tuple, list[tuple[tuple, dict[str, Any]]]] = OrderedDict()
        for key, g in groups.items():
            blocks.setdefault(key[:2], []).append((key, g))
        rows = []
        for (attack, _), members in blocks.items():
            best: dict[str, float] = {}
            for s, pick in BEST:
                vals = [as_float((g.get(s) or {}).get("value")) for _, g in members
                        if g["_row"].get("defence") != "none"]
                vals = [v for v in vals if not math.isnan(v)]
                if len(vals) > 1:
                    best[s] = pick(vals)
            for i, (_key, g) in enumerate(members):
                r = g["_row"]
                cells = []
                for s in main:
                    v = (g.get(s) or {}).get("value")
                    hit = s in best and r.get("defence") != "none" and as_float(v) == best[s]
                    cells.append({"score": s, "value": v, "cls": "num best" if hit else "num",
                                  "ci": _ci_text(g.get(s))})
                cls = ("group " if i == 0 else "") + ("total" if attack == "total" else "")
                rows.append({"cls": cls.strip(), "attack": attack_label(r) if i == 0 else "",
                             "defence": component_label(r.get("defence"), r.get("defence_preset")),
                             "count": g["_count"], "row": r, "cells": cells})
        blocks_out.append({"name": metric, "rows": rows})
    return blocks_out, [{"title": score_title(s), "help": score_help(s)} for s in main]


def _by_block(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    out: OrderedDict[tuple, list[dict[str, Any]]] = OrderedDict()
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return [{**dict(zip(keys, k)), "rows": v} for k, v in out.items()]


def leaderboard_context(data: ReportData) -> dict[str, Any]:
    from engine.evaluation.leaderboard import QUALITY_FLOOR

    rows = [{**r, "label": component_label(r.get("name"), r.get("preset"))} for r in data.leaderboard]
    return {"defences": _by_block([r for r in rows if r["table"] == "defences"], "metric", "attack"),
            "metrics": _by_block([r for r in rows if r["table"] == "metrics"], "attack"),
            "floor": data.extra.get("quality_floor", QUALITY_FLOOR)}


def paired_context(data: ReportData) -> dict[str, Any]:
    rows = [{**r, "a": component_label(r["defence_a"], r["defence_a_preset"]),
             "b": component_label(r["defence_b"], r["defence_b_preset"]),
             "attack": "all attacks" if r["attack"] == "total" else component_label(r["attack"], r["attack_preset"])}
            for r in data.paired]
    return {"blocks": _by_block(rows, "metric", "attack"), "ci_method": data.ci_method}


def glance(data: ReportData) -> list[tuple[str, str]]:
    """A compact setup block under the title; the full manifest is its own section."""
    by_kind: dict[str, list[str]] = OrderedDict((k, []) for k in ("metric", "attack", "defence"))
    for c in component_rows(data.spec):
        by_kind[c["kind"]].append(c["label"])
    m = data.manifest
    v = m.get("versions") or {}
    where = f"{m.get('device', '–')}" + (f" ({m['gpu']})" if m.get("gpu") else "")
    out = [("metrics", ", ".join(by_kind["metric"])), ("attacks", ", ".join(by_kind["attack"])),
           ("defences", ", ".join(["none", *by_kind["defence"]])),
           ("images", (f"{len(data.spec.get('images') or [])}; seed {data.spec.get('seed')}; "
                      f"{'adaptive' if data.spec.get('adaptive') else 'non-adaptive'} attacks"))]
    if data.spec.get("budget"):
        from engine.spec.budgets import budget_text_title

        label = str(data.spec["budget"])
        title = budget_text_title(label)
        out.append(("budget", f"{label} ({title})" if title and title != label else label))
    out.append(("run on", (f"{where}; tool {v.get('tool', '–')}, torch {v.get('torch', '–')}, "
                          f"pyiqa {v.get('pyiqa', '–')}")))
    return out


def manifest_context(data: ReportData) -> dict[str, Any]:
    return {"setup": setup_rows(data), "versions": version_rows(data), "components": component_rows(data.spec),
            "images": data.spec.get("images") or [], "runs": data.manifest.get("runs") or [],
            "manifest_json": json.dumps({k: v for k, v in data.manifest.items() if k != "runs"}, indent=2,
                                        sort_keys=True, default=str)}


def render_page(data: ReportData, *, figures: Sequence[tuple[SavedFigure, str]],
                strips: Sequence[tuple[SavedFigure, str]], strips_note: str, files: Sequence[str],
                store_name: str, tool_version: str, generated: str) -> str:
    """The whole report page.

    Args:
        data: the experiment's numbers.
        figures: plots with captions, in order.
        strips: image-strip figures with captions.
        strips_note: shown instead of/above the strips (e.g. images were not saved).
        files: names of the files written next to the report.
        store_name, tool_version, generated: for the footer.
    """
    order = ["summary", "leaderboard", "paired", *(["study"] if data.study else []), "plots", "strips", "manifest"]
    numbers = {name: i for i, name in enumerate(order, 1)}
    blocks, scores = summary_blocks(data.summary) if data.summary else ([], [])
    sections = {
        "summary": render("summary.html.j2", blocks=blocks, scores=scores, summary=data.summary,
                          ci_method=data.ci_method),
        "leaderboard": render("leaderboard.html.j2", number=numbers["leaderboard"], **leaderboard_context(data)),
        "paired": render("paired.html.j2", number=numbers["paired"], **paired_context(data)),
        "study": render("study.html.j2", number=numbers.get("study"), study=data.study),
        "failures": render("failures.html.j2", failed=[it for it in data.items if it.get("status") == "failed"],
                           row_errors=[{"row": r, "attack": attack_label(r)} for r in data.rows if r.get("error")]),
        "manifest": render("manifest.html.j2", number=numbers["manifest"], **manifest_context(data)),
    }
    titles = {"summary": "Summary", "leaderboard": "Leaderboard", "paired": "Paired", "study": "Study",
              "plots": "Plots", "strips": "Image strips", "manifest": "Manifest"}
    metrics = ", ".join(str(c.get("name") if isinstance(c, dict) else c) for c in data.spec.get("metrics") or [])
    return environment().get_template("page.html.j2").render(
        data=data, metrics=metrics, nav=[(k, titles[k]) for k in order] + [("files", "Files")],
        glance=glance(data), sections=sections, numbers=numbers, figures=list(figures), strips=list(strips),
        strips_note=strips_note, files=list(files), store_name=store_name, tool_version=tool_version,
        generated=generated, error_hook=ERROR_HOOK, rendered_mark=RENDERED_MARK,
        fig_width=lambda fig: round(fig.width_in * CSS_PX_PER_INCH)) + "\n"
