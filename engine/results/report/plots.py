"""The report's plots: attack curves, gain distributions and the quality/gain Pareto plot.

Each function takes stored rows/items/summary and returns a matplotlib ``Figure`` (or
None when there is nothing to draw).
"""
from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from engine.results.report.figures import PALETTE, new_figure, report_style
from engine.core.labels import as_float, component_label, lower_better, score_title

MAX_LINES = 60    # per curve panel; more images are drawn as a percentile band
MAX_POINTS = 150  # per box; more images are drawn as a violin instead of points


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _metric_name(label: str) -> str:
    return str(label).split("[")[0].split("(")[0]


def _label(v: Any) -> str:
    """A component label from a stored value (a label string or a spec dict)."""
    if isinstance(v, dict):
        from engine.spec.experiment import ComponentSpec

        return ComponentSpec.from_any(v).label
    return "" if v is None else str(v)


def score_curves(items: Iterable[dict[str, Any]]) -> Figure | None:
    """Metric score against attack iteration, one panel per metric × attack (against
    queries for score-only attacks, whose steps record them).

    Thin lines are single images (a 10–90 % band instead when there are more than
    ``MAX_LINES``), the thick line their mean over the iterations every image reached. In
    adaptive runs each targeted defence gets its own panel.

    Args:
        items: stored items with ``metric``, ``attack`` and ``steps`` (dicts with
            ``iteration`` and ``score``).

    Returns:
        The figure, or None when no item has steps.
    """
    groups: dict[tuple[str, str, str], list[tuple[np.ndarray, np.ndarray]]] = OrderedDict()
    for it in items:
        steps = [s for s in (it.get("steps") or []) if not math.isnan(as_float(s.get("score")))]
        if it.get("status", "done") != "done" or len(steps) < 1:
            continue
        attack = _label(it.get("attack_display") or it.get("attack"))
        if it.get("target_defence"):
            attack = f"{attack} → {_label(it['target_defence'])}"
        key = (_label(it.get("metric")), attack)
        # score-only attacks record the queries spent: their curves are gain against queries
        by_queries = all(s.get("queries") is not None for s in steps)
        its = np.array([int(s["queries"] if by_queries else s["iteration"]) for s in steps])
        key = key + (("queries" if by_queries else "iteration"),)
        sc = np.array([as_float(s["score"]) for s in steps])
        order = np.argsort(its, kind="stable")
        groups.setdefault(key, []).append((its[order], sc[order]))
    if not groups:
        return None
    rows, cols = _grid(len(groups))
    with report_style():
        fig = new_figure(3.2 * cols + 0.3, 2.5 * rows + 0.2)
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        for ax, ((metric, attack, x_unit), curves) in zip(axes.flat, groups.items()):
            n = min(len(c[0]) for c in curves)
            stack = np.array([c[1][:n] for c in curves])
            mean = stack.mean(axis=0)
            if len(curves) > MAX_LINES:  # thousands of lines make an unreadable, heavy SVG
                lo, hi = np.percentile(stack, [10, 90], axis=0)
                ax.fill_between(curves[0][0][:n], lo, hi, color=PALETTE[0], alpha=0.25, lw=0,
                                label="10–90 % of images")
            else:
                for its, sc in curves:
                    ax.plot(its, sc, color=PALETTE[0], alpha=0.35, lw=0.8)
            ax.plot(curves[0][0][:n], mean, color=PALETTE[1], lw=2, label=f"mean of {len(curves)}")
            ax.axhline(mean[0], color="#888888", lw=0.8, ls="--", label="clean (mean)")
            lb = lower_better(_metric_name(metric))
            arrow = "" if lb is None else (" (↓ better)" if lb else " (↑ better)")
            ax.set_title(f"{attack} on {metric}")
            ax.set_xlabel(x_unit)
            ax.set_ylabel(f"{metric} score{arrow}")
            if n > 1 and n <= 12:
                ax.set_xticks(curves[0][0][:n])
            ax.legend(frameon=False, loc="best")
    return fig


def _ordered_defences(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = OrderedDict()
    for r in rows:
        seen.setdefault(component_label(r.get("defence"), r.get("defence_preset")), None)
    labels = list(seen)
    if "none" in labels:  # the undefended baseline first
        labels.remove("none")
        labels.insert(0, "none")
    return labels


def gain_distribution(rows: list[dict[str, Any]], score: str = "robust_abs_gain") -> Figure | None:
    """Per-image distribution of a gain under each defence (box + points), one panel per metric.

    Points are coloured by attack (a violin replaces them beyond ``MAX_POINTS`` images);
    ``none`` (no defence) is the first box.

    Args:
        rows: raw rows.
        score: the row column to plot.

    Returns:
        The figure, or None without finite values.
    """
    by_metric: dict[str, list[dict[str, Any]]] = OrderedDict()
    for r in rows:
        if not math.isnan(as_float(r.get(score))):
            by_metric.setdefault(str(r.get("metric")), []).append(r)
    if not by_metric:
        return None
    attacks = list(OrderedDict.fromkeys(attack_label(r) for rs in by_metric.values() for r in rs))
    colour = {a: PALETTE[(i + 1) % len(PALETTE)] for i, a in enumerate(attacks)}
    n_def = max(len(_ordered_defences(rs)) for rs in by_metric.values())
    with report_style():
        fig = new_figure(min(10.5, 3.2 + 0.8 * n_def), 3.0 * len(by_metric) + 0.3)
        axes = fig.subplots(len(by_metric), 1, squeeze=False)[:, 0]
        rng = np.random.default_rng(0)  # fixed jitter: rebuilt reports look the same
        points_drawn = False
        for ax, (metric, rs) in zip(axes, by_metric.items()):
            labels = _ordered_defences(rs)
            data = [[as_float(r[score]) for r in rs
                     if component_label(r.get("defence"), r.get("defence_preset")) == lab] for lab in labels]
            many = max(len(d) for d in data) > MAX_POINTS
            if many:
                for i, d in enumerate(data):
                    if np.ptp(d) <= 0:  # a constant sample has no density to draw
                        continue
                    parts = ax.violinplot([d], positions=[i], widths=0.8, showextrema=False)
                    for body in parts["bodies"]:
                        body.set(facecolor="#c9d3e6", edgecolor="none", alpha=0.8)
            else:
                points_drawn = True
            ax.boxplot(data, positions=range(len(labels)), widths=0.25 if many else 0.55, showfliers=False,
                       patch_artist=True, boxprops={"facecolor": "#eef2f8", "edgecolor": "#4a5a75"},
                       medianprops={"color": "#1b2a41", "lw": 1.4},
                       whiskerprops={"color": "#4a5a75"}, capprops={"color": "#4a5a75"})
            for i, lab in enumerate(labels):
                if many:
                    break
                for r in rs:
                    if component_label(r.get("defence"), r.get("defence_preset")) != lab:
                        continue
                    a = attack_label(r)
                    ax.scatter(i + rng.uniform(-0.16, 0.16), as_float(r[score]), s=12,
                               color=colour[a], alpha=0.85, lw=0, zorder=3)
            ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 5 else 0,
                          ha="right" if len(labels) > 5 else "center")
            ax.set_ylabel(score_title(score))
            ax.set_title(f"{score_title(score)} per defence — {metric}")
            ax.set_xlim(-0.6, len(labels) - 0.4)
        if points_drawn:
            handles = [axes[0].scatter([], [], s=14, color=colour[a], label=a) for a in attacks]
            fig.legend(handles=handles, title="attack", frameon=False, loc="outside right upper")
    return fig


TOTAL = "all attacks"


def attack_label(row: dict[str, Any]) -> str:
    """An attack's display label; the summary's ``total`` block is ``all attacks``."""
    if row.get("attack") == "total":
        return TOTAL
    return component_label(row.get("attack"), row.get("attack_preset"))


def summary_table(summary: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, float]]:
    """Long-format summary → ``{(metric, attack label, defence label): {score: value}}``."""
    out: dict[tuple[str, str, str], dict[str, float]] = OrderedDict()
    for s in summary:
        key = (str(s.get("metric", "")), attack_label(s),
               component_label(s.get("defence"), s.get("defence_preset")))
        out.setdefault(key, {})[str(s["score"])] = as_float(s.get("value"))
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """Which ``(gain, quality)`` points are not dominated (lower gain, higher quality wins).

    Example:
        >>> pareto_front([(0.1, 0.6), (0.2, 0.5), (0.05, 0.3)])
        [True, False, True]
    """
    out = []
    for i, (g, q) in enumerate(points):
        dominated = any((g2 <= g and q2 >= q) and (g2 < g or q2 > q)
                        for j, (g2, q2) in enumerate(points) if j != i)
        out.append(not dominated and not (math.isnan(g) or math.isnan(q)))
    return out


def pareto_points(summary: Iterable[dict[str, Any]], quality: str = "quality_score",
                  gain: str = "robust_abs_gain") -> dict[str, list[tuple[str, float, float]]]:
    """Per metric, ``(defence label, remaining gain, quality)`` over all attacks.

    Uses the summary's ``total`` block; with a single attack and no total block, that
    attack's means.
    """
    table = summary_table(summary)
    per_metric: dict[str, dict[str, dict[str, dict[str, float]]]] = defaultdict(lambda: defaultdict(dict))
    for (metric, attack, defence), scores in table.items():
        per_metric[metric][attack][defence] = scores
    out: dict[str, list[tuple[str, float, float]]] = OrderedDict()
    for metric, attacks in per_metric.items():
        block = attacks.get(TOTAL)
        if block is None and len(attacks) == 1:
            block = next(iter(attacks.values()))
        if block is None:
            continue
        pts = [(d, s.get(gain, math.nan), s.get(quality, math.nan)) for d, s in block.items()]
        pts = [p for p in pts if not (math.isnan(p[1]) or math.isnan(p[2]))]
        if pts:
            out[metric] = pts
    return out


def summary_intervals(summary: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str, str], tuple[float, float]]:
    """``{(metric, attack label, defence label, score): (ci_low, ci_high)}`` where the summary has one."""
    out = {}
    for s in summary:
        lo, hi = as_float(s.get("ci_low")), as_float(s.get("ci_high"))
        if not (math.isnan(lo) or math.isnan(hi)):
            out[(str(s.get("metric", "")), attack_label(s), component_label(s.get("defence"), s.get("defence_preset")),
                 str(s["score"]))] = (lo, hi)
    return out


def _error_bars(ax, metric: str, pts: list[tuple[str, float, float]], cis: dict, gain: str, quality: str) -> None:
    """95 % intervals of both means as error bars (the block :func:`pareto_points` used:
    all attacks, else the only attack; nothing where the summary has no interval)."""
    def interval(lab: str, score: str) -> tuple[float, float] | None:
        if (metric, TOTAL, lab, score) in cis:
            return cis[(metric, TOTAL, lab, score)]
        return next((v for k, v in cis.items() if k[0] == metric and k[2] == lab and k[3] == score), None)

    for lab, g, q in pts:
        gi, qi = interval(lab, gain), interval(lab, quality)
        if gi is None and qi is None:
            continue
        ax.errorbar(g, q, xerr=[[g - gi[0]], [gi[1] - g]] if gi else None,
                    yerr=[[q - qi[0]], [qi[1] - q]] if qi else None, fmt="none", ecolor="#9aa5b8",
                    elinewidth=0.8, capsize=2, zorder=1)


def pareto_plot(summary: Iterable[dict[str, Any]], quality: str = "quality_score",
                gain: str = "robust_abs_gain") -> Figure | None:
    """Quality of D(x_a) against remaining gain, one point per defence/preset, front marked;
    error bars are the summary's 95 % intervals.

    Args:
        summary: long-format summary rows (means).
        quality, gain: the score names on the y and x axes.

    Returns:
        The figure, or None when the summary has neither score.
    """
    summary = list(summary)
    per_metric = pareto_points(summary, quality, gain)
    if not per_metric:
        return None
    cis = summary_intervals(summary)
    rows, cols = _grid(len(per_metric), 2)
    with report_style():
        fig = new_figure(6.4, 4.6) if len(per_metric) == 1 else new_figure(4.8 * cols + 0.3, 3.8 * rows + 0.2)
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.flat[len(per_metric):]:
            ax.set_visible(False)
        for ax, (metric, pts) in zip(axes.flat, per_metric.items()):
            front = pareto_front([(g, q) for _, g, q in pts])
            gains = [g for _, g, _ in pts]
            if min(gains) > 0 and max(gains) / min(gains) > 30:  # spread over decades: log keeps it readable
                ax.set_xscale("log")
            _error_bars(ax, metric, pts, cis, gain, quality)
            for (lab, g, q), on in zip(pts, front):
                base = lab == "none"
                ax.scatter(g, q, s=46 if on else 30, marker="s" if base else "o",
                           color=PALETTE[1] if on else ("#444444" if base else "#9aa5b8"),
                           edgecolor="white", lw=0.6, zorder=3)
            _place_labels(ax, [(lab, g, q, on) for (lab, g, q), on in zip(pts, front)])
            fpts = sorted((g, q) for (_, g, q), on in zip(pts, front) if on)
            if len(fpts) > 1:
                ax.step([p[0] for p in fpts], [p[1] for p in fpts], where="post",
                        color=PALETTE[1], lw=1.2, alpha=0.8, label="Pareto front", zorder=2)
            else:
                ax.plot([], [], color=PALETTE[1], label="Pareto front")
            log = " (log scale)" if ax.get_xscale() == "log" else ""
            ax.set_xlabel(f"{score_title(gain)} (mean, ← better){log}")
            ax.set_ylabel(f"{score_title(quality)} (mean, ↑ better)")
            ax.set_title(f"Quality vs remaining gain — {metric}")
            ax.margins(x=0.12, y=0.12)
            ax.legend(frameon=False, loc="lower right")
    return fig


def _place_labels(ax, points: list[tuple[str, float, float, bool]]) -> None:
    """Annotate points, moving each label to the first nearby spot that overlaps no other.

    Greedy placement in display coordinates: good enough for the tens of points a
    defence sweep has, and needs no extra package.
    """
    ax.margins(x=0.12, y=0.12)
    ax.figure.canvas.draw()  # fix limits so data→display transforms are final
    trans = ax.transData
    char_w, height = 4.3, 9.0  # points at 7-pt text; the DPI factor is applied below
    scale = ax.figure.dpi / 72
    placed: list[tuple[float, float, float, float]] = []
    marks = [trans.transform((g, q)) for _, g, q, _ in points]
    offsets = [(5, 3), (5, -11), (-5, 3), (-5, -11), (5, 12), (-5, 12), (5, -20), (-5, -20)]
    for (lab, g, q, on), (px, py) in zip(points, marks):
        w, h = len(lab) * char_w * scale, height * scale
        choice = offsets[0]
        for dx, dy in offsets:
            x0 = px + dx * scale - (w if dx < 0 else 0)
            y0 = py + dy * scale
            box = (x0, y0, x0 + w, y0 + h)
            hits_label = any(not (box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]) for b in placed)
            hits_mark = any(box[0] - 2 < mx < box[2] + 2 and box[1] - 2 < my < box[3] + 2
                            for mx, my in marks if (mx, my) != (px, py))
            bb = ax.bbox
            inside = bb.x0 <= box[0] and box[2] <= bb.x1 and bb.y0 <= box[1] and box[3] <= bb.y1
            if inside and not hits_label and not hits_mark:
                choice = (dx, dy)
                placed.append(box)
                break
        else:
            x0 = px + choice[0] * scale
            placed.append((x0, py, x0 + w, py + h))
        ax.annotate(lab, (g, q), xytext=choice, textcoords="offset points", fontsize=7,
                    ha="right" if choice[0] < 0 else "left", va="bottom",
                    color="#222222" if on else "#666666")
