"""Flags on result rows: an attack that did not gain, or drove the score past the metric's
bounds (e.g. BRISQUE to −40, beyond its MSU best of −10.6). Plain Python, no Qt."""
from __future__ import annotations

import math
from typing import Any

from engine.core.bounds import msu_bounds


def metric_name(label: str) -> str:
    """``niqe`` from a metric label such as ``niqe[fast]`` or ``musiq(koniq)``."""
    return str(label).split("[")[0].split("(")[0]


def row_flags(row: dict[str, Any]) -> list[str]:
    """What is suspicious about a row: ``no gain`` and/or ``past bounds``."""
    if row.get("error"):
        return []
    flags = []
    if row.get("attack_gained") is False:
        flags.append("no gain")
    bounds = msu_bounds(metric_name(row.get("metric", "")))
    attacked = row.get("attacked")
    if bounds is not None and isinstance(attacked, (int, float)) and math.isfinite(attacked):
        worst, best = bounds
        if (worst > best and attacked < best) or (worst < best and attacked > best):
            flags.append("past bounds")
    return flags


def flag_text(row: dict[str, Any]) -> str:
    """A sentence for the inspector (empty when nothing is flagged)."""
    flags = row_flags(row)
    parts = []
    if "no gain" in flags:
        parts.append("the attack did not gain (the score did not move toward better)")
    if "past bounds" in flags:
        bounds = msu_bounds(metric_name(row.get("metric", "")))
        parts.append(f"the attacked score {row.get('attacked'):.4g} is past the metric's best bound "
                     f"{bounds[1]:g} (range {bounds[0]:g} → {bounds[1]:g}): gains over 1 are not meaningful")
    return "; ".join(parts)


def flag_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with a ``flag`` column ("no gain, past bounds", or empty)."""
    return dict(row, flag=", ".join(row_flags(row)))
