"""Items of a grid that the store already holds under another experiment (no Qt).

Work is identified by its experiment today, so a grid that grows (one more metric ticked)
is a new experiment that computes its stored items again; reuse by content is an engine
change of its own. Until then the plan says which items are stored elsewhere, honestly:
the same image, metric and attack settings, seed and run options that change an attack.
"""
from __future__ import annotations

import json
from typing import Any

#: experiment options that change what an item computes (besides its image, metric, attack)
SAME = ("seed", "adaptive", "eot_draws", "max_pixels", "budget", "mos_file")


def _keys(specs: list[Any]) -> set[str]:
    return {json.dumps(s, sort_keys=True, default=str) for s in specs}


def stored_elsewhere(exp: Any, stored: list[dict[str, Any]]) -> list[tuple[str, int, bool]]:
    """For each other stored experiment sharing items with ``exp``: (its id, how many of
    ``exp``'s items it holds, whether that count is exact). Exact when that experiment is
    finished; otherwise at most its finished items ("up to").

    Args:
        exp: an :class:`engine.spec.experiment.Experiment`; stored: ``ResultStore.experiments()``.
    """
    mine = exp.to_dict()
    if mine.get("adaptive"):
        return []   # an adaptive attack depends on the defences too
    out = []
    for e in stored:
        spec = e.get("spec") or {}
        if e.get("id") == exp.id or any(spec.get(k) != mine.get(k) for k in SAME) or not e.get("done"):
            continue
        n = (len(set(mine["images"]) & set(spec.get("images") or []))
             * len(_keys(mine["metrics"]) & _keys(spec.get("metrics") or []))
             * len(_keys(mine["attacks"]) & _keys(spec.get("attacks") or [])))
        if n:
            finished = e["done"] == e["total"]
            out.append((e["id"], n if finished else min(n, e["done"]), finished))
    return out


def reuse_note(exp: Any, stored: list[dict[str, Any]]) -> str:
    """One line for the plan, or "" when nothing of ``exp`` is stored elsewhere."""
    found = stored_elsewhere(exp, stored)
    if not found:
        return ""
    parts = [f"{'' if exact else 'up to '}{n} under experiment {eid[:8]}" for eid, n, exact in found]
    return (f"stored already with the same image, metric and attack settings: {'; '.join(parts)}; this "
            "experiment computes them again (reuse across experiments is not built yet)")
