"""The report's HTML: one self-contained page (inline CSS, images as data URIs, no network).

Every string that comes from a run (labels, file names, errors, parameters) goes through
:func:`html.escape`.
"""
from __future__ import annotations

import html
import json
import math
from collections import OrderedDict
from typing import Any, Iterable, Sequence

from engine.report.data import ReportData
from engine.report.figures import SavedFigure
from engine.report.labels import MAIN_SCORES, as_float, component_label, fmt, score_help, score_title
from engine.report.manifest import component_rows, setup_rows, version_rows
from engine.report.plots import attack_label

CSS = """
:root { --ink:#1b1f24; --muted:#5b6470; --rule:#2b2f36; --soft:#e6e9ee; --accent:#9b1c1c; --ok:#1e6b3a; }
* { box-sizing: border-box; }
body { margin:0; background:#f4f5f7; color:var(--ink);
  font: 14px/1.5 "Helvetica Neue", Helvetica, Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 20px auto; background:#fff; padding: 32px 36px 28px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h1 { font-size: 24px; margin: 0 0 4px; letter-spacing: -.01em; }
h2 { font-size: 18px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--soft); }
h3 { font-size: 15px; margin: 22px 0 8px; }
.sub { color: var(--muted); margin: 0 0 16px; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
nav { font-size: 13px; color: var(--muted); margin-bottom: 10px; }
nav a { color: var(--muted); margin-right: 14px; }
.status { padding: 10px 14px; border-radius: 4px; margin: 14px 0; }
.status.complete { background:#eef7f1; border-left: 4px solid var(--ok); }
.status.partial { background:#fdf1f1; border-left: 4px solid var(--accent); }
.cols { display:grid; grid-template-columns: 1.4fr 1fr; gap: 28px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0 8px; }
table.book { border-top: 1.5px solid var(--rule); border-bottom: 1.5px solid var(--rule); width: 100%; }
table.book thead th { border-bottom: 1px solid var(--rule); }
th, td { padding: 3px 9px; text-align: left; vertical-align: top; }
th { font-weight: 600; font-size: 12.5px; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.group td { border-top: 1px solid var(--soft); }
tr.total td { background: #f7f8fa; }
td.best { font-weight: 700; }
table.kv th { color: var(--muted); font-weight: 500; white-space: nowrap; }
table.summary { font-size: 12.5px; }
table.summary thead th.num { white-space: normal; max-width: 88px; vertical-align: bottom; }
table.summary td.label { max-width: 170px; }
table.summary td, table.summary th { padding: 3px 6px; }
.scroll { overflow-x: auto; }
.params { font-size: 12px; color: #333; }
.params span { display:inline-block; margin-right: 10px; white-space: nowrap; }
.params b { font-weight: 600; color: var(--muted); }
.note { color: var(--muted); font-size: 12.5px; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; display:block; margin: 0 auto; }
figcaption { font-size: 13px; color: #333; margin-top: 6px; }
figcaption b { color: var(--ink); }
figcaption .files a { color: var(--muted); font-size: 12px; margin-left: 6px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--muted); }
pre { background:#f7f8fa; padding: 10px; overflow:auto; font-size: 12px; }
.err { color: var(--accent); white-space: pre-wrap; font-size: 12.5px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--soft);
  padding-top: 8px; }
dl.defs { display:grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 12.5px; }
dl.defs dt { font-weight: 600; } dl.defs dd { margin: 0; color: #333; }
dl.glance { font-size: 13.5px; margin: 4px 0 8px; }
@media print { body { background:#fff; } main { box-shadow:none; margin:0; } details { display:block; } }
"""

CSS_PX_PER_INCH = 110  # above 96 so 8.5-pt figure text reads like the 13-px body text

# Sets a marker on <html> for any script error; tests read it from Chromium's dumped DOM.
ERROR_HOOK = ("window.__reportErrors=[];window.onerror=function(m,s,l){window.__reportErrors.push(String(m));"
              "document.documentElement.setAttribute('data-js-errors',String(window.__reportErrors.length));};")
RENDERED_MARK = "document.body.setAttribute('data-rendered','ok');"


def e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def e_label(v: Any) -> str:
    """An escaped component label that may break after ``[`` and ``,`` in narrow columns."""
    return e(v).replace("[", "[<wbr>").replace(",", ",<wbr>")


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return e(v if v is not None else "–")
    if isinstance(v, float):
        return e(fmt(v, 6))
    return e(v)


def kv_table(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{e(k)}</th><td>{_value(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def param_value(v: Any, unit: str = "") -> str:
    """A parameter for display; ``×255`` budgets read as ``10/255``."""
    if unit == "×255" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v * 255:.4g}/255"
    return (fmt(v, 6) if isinstance(v, float) else str(v)) + (f" {unit}" if unit and unit != "×255" else "")


def params_html(params: dict[str, Any], given: dict[str, Any], units: dict[str, str] | None = None) -> str:
    if not params:
        return '<span class="note">no parameters</span>'
    parts = []
    for k, v in params.items():
        mark = " *" if k in given else ""
        parts.append(f"<span><b>{e(k)}</b>={e(param_value(v, (units or {}).get(k, '')))}{e(mark)}</span>")
    return '<div class="params">' + "".join(parts) + "</div>"


def _runs_table(rows: str, n: int) -> str:
    if not n:
        return ""
    return (f'<details><summary>Runs of this experiment ({n})</summary><table class="book"><thead><tr>'
            '<th class="num">#</th><th>device</th><th>GPU</th><th>tool</th><th>torch</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></details>')


def manifest_section(data: ReportData) -> str:
    comps = component_rows(data.spec)
    crow = "".join(
        f"<tr><td>{e(c['kind'])}</td><td class='mono' title='{e(c['spec'])}'>{e(c['label'])}</td>"
        f"<td>{params_html(c['params'], c['given'], c['units'])}"
        + (f"<div class='note'>{e(c['note'])}</div>" if c["note"] else "") + "</td></tr>"
        for c in comps)
    images = data.spec.get("images") or []
    img_list = "".join(f"<li class='mono'>{e(p)}</li>" for p in images)
    runs = data.manifest.get("runs") or []
    run_rows = "".join(
        f"<tr><td class='num'>{i}</td><td>{e(r.get('device'))}</td><td>{e(r.get('gpu') or '–')}</td>"
        f"<td>{e((r.get('versions') or {}).get('tool'))}</td><td>{e((r.get('versions') or {}).get('torch'))}</td></tr>"
        for i, r in enumerate(runs, 1))
    manifest_json = json.dumps({k: v for k, v in data.manifest.items() if k != "runs"}, indent=2,
                               sort_keys=True, default=str)
    return f"""
<section id="manifest"><h2>4. Experiment manifest</h2>
<div class="cols"><div><h3>Setup</h3>{kv_table(setup_rows(data))}</div>
<div><h3>Versions</h3>{kv_table(version_rows(data)) if version_rows(data) else '<p class="note">not recorded</p>'}</div></div>
<h3>Components and every parameter</h3>
<table class="book"><thead><tr><th>kind</th><th>label</th><th>parameters (* = set explicitly, others from defaults/preset)</th></tr></thead>
<tbody>{crow}</tbody></table>
<p class="note">The identity defence <code>none</code> is always evaluated as the undefended baseline.
Per-item seeds are derived from the master seed and the item's identity; random defences apply the same draw
to the clean and the attacked image.</p>
<details><summary>Images ({len(images)})</summary><ol>{img_list}</ol></details>
{_runs_table(run_rows, len(runs))}
<details><summary>Full manifest (JSON)</summary><pre>{e(manifest_json)}</pre></details>
</section>"""


def _cell(row: dict[str, Any], score: str, value: Any, cls: str = "num") -> str:
    attrs = (f'data-metric="{e(row.get("metric"))}" data-attack="{e(row.get("attack"))}" '
             f'data-attack-preset="{e(row.get("attack_preset"))}" data-defence="{e(row.get("defence"))}" '
             f'data-defence-preset="{e(row.get("defence_preset"))}" data-score="{e(score)}" '
             f'data-value="{e(repr(value) if isinstance(value, float) else "")}"')
    return f'<td class="{cls}" {attrs}>{e(fmt(value))}</td>'


def _grouped(summary: list[dict[str, Any]]) -> "OrderedDict[str, OrderedDict[tuple, dict[str, Any]]]":
    """metric → (attack, attack_preset, defence, defence_preset) → {score: value, _row, _count}."""
    out: OrderedDict[str, OrderedDict[tuple, dict[str, Any]]] = OrderedDict()
    for s in summary:
        key = (s.get("attack"), s.get("attack_preset"), s.get("defence"), s.get("defence_preset"))
        g = out.setdefault(str(s.get("metric")), OrderedDict()).setdefault(key, {"_row": s, "_count": 0})
        g[str(s["score"])] = s.get("value")
        if s["score"] == "robust_abs_gain" or not g["_count"]:  # images behind the key score
            g["_count"] = int(s.get("count") or 0)
    return out


def summary_section(data: ReportData) -> str:
    if not data.summary:
        return ('<section id="summary"><h2>1. Summary</h2><p class="status partial">No finished item yet: '
                'nothing to summarise.</p></section>')
    scores_present = list(OrderedDict.fromkeys(str(s["score"]) for s in data.summary))
    with_values = {str(s["score"]) for s in data.summary if s.get("value") is not None}
    main = [s for s in MAIN_SCORES if s in scores_present and s in with_values]
    parts = ['<section id="summary"><h2>1. Summary: means per metric × attack × defence</h2>',
             '<p class="note">Means over finished images (items with errors left out), exactly as in '
             '<code>summary.csv</code>. <b>Bold</b>: the best defence within an attack block '
             '(lowest remaining gain, highest quality, highest robustness). “all attacks” pools every attack.</p>']
    for metric, groups in _grouped(data.summary).items():
        head = "".join(f'<th class="num" title="{e(score_help(s))}">{e(score_title(s))}</th>' for s in main)
        body = []
        blocks: OrderedDict[tuple, list[tuple[tuple, dict[str, Any]]]] = OrderedDict()
        for key, g in groups.items():
            blocks.setdefault(key[:2], []).append((key, g))
        for (attack, _), members in blocks.items():
            best: dict[str, float] = {}
            for s, pick in (("robust_abs_gain", min), ("quality_score", max), ("robustness", max),
                            ("similarity_score", max), ("both_defended_abs_gain", min), ("gain_removed", max)):
                vals = [as_float(g.get(s)) for _, g in members if g["_row"].get("defence") != "none"]
                vals = [v for v in vals if not math.isnan(v)]
                if len(vals) > 1:
                    best[s] = pick(vals)
            for i, (key, g) in enumerate(members):
                r = g["_row"]
                cls = ("group " if i == 0 else "") + ("total" if attack == "total" else "")
                cells = []
                for s in main:
                    v = g.get(s)
                    hit = s in best and r.get("defence") != "none" and as_float(v) == best[s]
                    cells.append(_cell(r, s, v, "num best" if hit else "num"))
                alabel = attack_label(r) if i == 0 else ""
                body.append(f'<tr class="{cls.strip()}"><td class="label">{e_label(alabel)}</td>'
                            f'<td class="mono label">{e_label(component_label(r.get("defence"), r.get("defence_preset")))}</td>'
                            f'<td class="num">{g["_count"]}</td>{"".join(cells)}</tr>')
        parts.append(f'<h3>{e(metric)}</h3><div class="scroll"><table class="book summary"><thead><tr><th>attack</th><th>defence</th>'
                     f'<th class="num">n</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    defs = "".join(f"<dt>{e(score_title(s))}</dt><dd>{e(score_help(s))}</dd>" for s in main)
    parts.append(f'<dl class="defs">{defs}</dl>')
    full = "".join(
        f'<tr><td>{e(s.get("metric"))}</td><td>{e(s.get("attack"))}</td><td>{e(s.get("attack_preset"))}</td>'
        f'<td>{e(s.get("defence"))}</td><td>{e(s.get("defence_preset"))}</td><td class="mono">{e(s.get("score"))}</td>'
        f'{_cell(s, str(s["score"]), s.get("value"))}<td class="num">{e(s.get("count"))}</td></tr>'
        for s in data.summary)
    parts.append('<details id="all-scores"><summary>All summary scores (long format, as in summary.csv)</summary>'
                 '<table class="book summary"><thead><tr><th>metric</th><th>attack</th><th>attack_preset</th>'
                 '<th>defence</th><th>defence_preset</th><th>score</th><th class="num">value</th>'
                 f'<th class="num">count</th></tr></thead><tbody>{full}</tbody></table></details></section>')
    return "".join(parts)


def figure_html(fig: SavedFigure, number: int, caption: str) -> str:
    files = f'<a href="figures/{e(fig.png.name)}">PNG</a>'
    if fig.svg is not None:
        files += f'<a href="figures/{e(fig.svg.name)}">SVG</a>'
    width = round(fig.width_in * CSS_PX_PER_INCH)
    return (f'<figure id="{e(fig.stem)}"><img alt="{e(fig.title)}" style="width:{width}px" src="{fig.data_uri()}">'
            f'<figcaption><b>Figure {number}. {e(fig.title)}.</b> {e(caption)}'
            f'<span class="files">{files}</span></figcaption></figure>')


def glance_html(data: ReportData) -> str:
    """A compact setup block under the title; the full manifest is section 4."""
    comps = component_rows(data.spec)
    by_kind: dict[str, list[str]] = OrderedDict((k, []) for k in ("metric", "attack", "defence"))
    for c in comps:
        by_kind[c["kind"]].append(c["label"])
    m = data.manifest
    v = m.get("versions") or {}
    where = f"{m.get('device', '–')}" + (f" ({m['gpu']})" if m.get("gpu") else "")
    items = [("metrics", ", ".join(by_kind["metric"])), ("attacks", ", ".join(by_kind["attack"])),
             ("defences", ", ".join(["none", *by_kind["defence"]])),
             ("images", f"{len(data.spec.get('images') or [])}; seed {data.spec.get('seed')}; "
                        f"{'adaptive' if data.spec.get('adaptive') else 'non-adaptive'} attacks"),
             ("run on", f"{where}; tool {v.get('tool', '–')}, torch {v.get('torch', '–')}, pyiqa {v.get('pyiqa', '–')}")]
    body = "".join(f"<dt>{e(k)}</dt><dd>{e(val)}</dd>" for k, val in items)
    return f'<dl class="defs glance" id="glance">{body}</dl>'


def status_html(data: ReportData) -> str:
    if data.complete:
        return (f'<div class="status complete" id="run-status">Complete run: all {data.total} work items '
                'finished.</div>')
    parts = [f"<b>Partial run</b>: {data.done} of {data.total} work items finished"]
    if data.missing:
        parts.append(f"<b>{data.missing} missing</b> (not computed yet)")
    if data.failed:
        parts.append(f'<b>{data.failed} failed</b> (see <a href="#failures">failures</a>)')
    return (f'<div class="status partial" id="run-status" data-missing="{data.missing}" '
            f'data-failed="{data.failed}">{"; ".join(parts)}. Numbers below cover the finished items only. '
            'Run the same experiment again into the same output folder to resume, then rebuild this report.</div>')


def failures_section(data: ReportData) -> str:
    failed = [it for it in data.items if it.get("status") == "failed"]
    row_errors = [r for r in data.rows if r.get("error")]
    if not failed and not row_errors:
        return ""
    body = "".join(
        f"<tr><td class='mono'>{e(it.get('image_name'))}</td><td>{e(it.get('metric'))}</td>"
        f"<td>{e(it.get('attack_display') or it.get('attack'))}</td><td>–</td><td>{e(it.get('stage'))}</td>"
        f"<td class='err'>{e(it.get('error'))}</td></tr>" for it in failed)
    body += "".join(
        f"<tr><td class='mono'>{e(r.get('image_name'))}</td><td>{e(r.get('metric'))}</td><td>{e(attack_label(r))}</td>"
        f"<td>{e(r.get('defence_label') or r.get('defence'))}</td><td>defence</td><td class='err'>{e(r.get('error'))}</td></tr>"
        for r in row_errors)
    return (f'<section id="failures"><h2>Failures</h2><table class="book"><thead><tr><th>image</th><th>metric</th>'
            f'<th>attack</th><th>defence</th><th>stage</th><th>error</th></tr></thead><tbody>{body}</tbody></table></section>')


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
    metrics = ", ".join(str(c.get("name") if isinstance(c, dict) else c) for c in data.spec.get("metrics") or [])
    n = 0
    fig_html = []
    for fig, cap in figures:
        n += 1
        fig_html.append(figure_html(fig, n, cap))
    strip_html = []
    for fig, cap in strips:
        n += 1
        strip_html.append(figure_html(fig, n, cap))
    file_list = "".join(f'<li><a href="{e(f)}">{e(f)}</a></li>' for f in files)
    plots = "".join(fig_html) or '<p class="note">No finished item yet: nothing to plot.</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Robustness report {e(data.experiment_id)}</title>
<script>{ERROR_HOOK}</script>
<style>{CSS}</style></head>
<body><main>
<h1>Adversarial robustness of no-reference IQA metrics</h1>
<p class="sub">Experiment <code>{e(data.experiment_id)}</code> · metric(s) {e(metrics)} ·
seed {e(data.spec.get('seed'))} · created {e(data.created or '–')}</p>
<nav><a href="#summary">Summary</a><a href="#plots">Plots</a><a href="#strips">Image strips</a>
<a href="#manifest">Manifest</a><a href="#files">Files</a></nav>
{status_html(data)}
{glance_html(data)}
{summary_section(data)}
<section id="plots"><h2>2. Plots</h2>{plots}</section>
<section id="strips"><h2>3. Image strips</h2>{f'<p class="note">{e(strips_note)}</p>' if strips_note else ''}{''.join(strip_html)}</section>
{failures_section(data)}
{manifest_section(data)}
<section id="files"><h2>Files</h2><p class="note">Written next to this report; plots as PNG and SVG.</p>
<ul>{file_list}</ul></section>
<footer>Generated {e(generated)} by iqa-purification-lab {e(tool_version)} from the result store
<code>{e(store_name)}</code>. Every number is read from the store: rebuild with
<code>python main.py report {e(store_name)} --out DIR --experiment {e(data.experiment_id)}</code>.</footer>
</main><script>{RENDERED_MARK}</script></body></html>
"""
