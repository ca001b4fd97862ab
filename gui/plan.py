"""The plan of a run before it starts (no Qt): items, a time estimate, what cannot run.

The estimate comes from stored timings of the same metric and attack (any experiment in
the output store); the problems are :func:`engine.run.prepare.check`'s — exactly what the
CLI refuses (a bad name or value, missing weights, a missing trained file) — so a run
never starts on something that will fail.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.run.prepare import Problem, check, plan_counts, without_problems
from engine.spec.experiment import Experiment


@dataclass
class Plan:
    items: int
    pending: int
    seconds: float | None                 # estimated time of the pending items
    timed_from: int = 0                   # stored items the estimate is based on
    problems: list[Problem] = field(default_factory=list)
    skipped_all: str = ""                 # why nothing can run, when skipping leaves nothing
    reused: int = 0                       # items whose rows the store holds (any experiment)
    notes: list[str] = field(default_factory=list)  # why stored work is computed again

    @property
    def runnable(self) -> bool:
        return not self.skipped_all

    def lines(self) -> list[str]:
        """The plan as plain text lines (the dialog and the log show them)."""
        out = [f"{self.pending} item(s) to compute" + (f" of {self.items}" if self.pending != self.items else "")
               + (f", {self.reused} reused from the store" if self.reused else "")]
        out += self.notes
        if self.seconds is None:
            out.append("time: unknown (no stored timings of these components yet)")
        else:
            out.append(f"time: about {_duration(self.seconds)} (from {self.timed_from} stored item(s))")
        for p in self.problems:
            out.append(p.line)
        if self.skipped_all:
            out.append(self.skipped_all)
        return out


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def stored_timings(store_path: Path | None) -> dict[tuple[str, str], list[float]]:
    """(metric label, attack label) → seconds of every finished item in the store."""
    from engine.store.db import ResultStore

    out: dict[tuple[str, str], list[float]] = {}
    if store_path is None or not Path(store_path).exists():
        return out
    try:
        with ResultStore(store_path, readonly=True) as store:
            for e in store.experiments():
                for it in store.items(e["id"]):
                    if it["status"] == "done" and it.get("seconds"):
                        out.setdefault((it["metric"], it["attack"]), []).append(float(it["seconds"]))
    except Exception:  # noqa: BLE001 - no estimate, not an error
        return {}
    return out


def make_plan(exp: Experiment, store_path: Path | None, metric_info: dict[str, dict[str, Any]]) -> Plan:
    """What running ``exp`` into ``store_path`` would do."""
    from engine.plugins.records import recorded

    exp = recorded(exp)  # as the run will: plug-in code is part of the identity
    counts = plan_counts(exp, store_path)
    pending = counts["pending"]
    timings = stored_timings(store_path)
    seconds, based = 0.0, 0
    for it in pending:
        ts = timings.get((it.metric.label, it.attack.label))
        if not ts:
            seconds, based = -1.0, 0
            break
        seconds += sum(ts) / len(ts)
        based = max(based, len(ts))
    plan = Plan(counts["items"], len(pending), seconds if seconds >= 0 and pending else (0.0 if not pending else None),
                based, check(exp, metric_info), reused=counts["reused"], notes=counts["notes"])
    if plan.problems:
        rest = without_problems(exp, plan.problems)
        if rest is None:
            plan.skipped_all = "nothing is left to run once these are skipped"
    return plan
