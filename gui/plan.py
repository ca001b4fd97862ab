"""The plan of a run before it starts (no Qt): items, a time estimate, what cannot run.

The estimate comes from stored timings of the same metric and attack (any experiment in
the output store); the problems from each component's availability (missing weights,
a missing trained file), so a run never starts on something that will fail.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.spec.experiment import ComponentSpec, Experiment


@dataclass(frozen=True)
class Problem:
    kind: str       # metric, attack, defence
    label: str
    reason: str


@dataclass
class Plan:
    items: int
    pending: int
    seconds: float | None                 # estimated time of the pending items
    timed_from: int = 0                   # stored items the estimate is based on
    problems: list[Problem] = field(default_factory=list)
    skipped_all: str = ""                 # why nothing can run, when skipping leaves nothing

    @property
    def runnable(self) -> bool:
        return not self.skipped_all

    def lines(self) -> list[str]:
        """The plan as plain text lines (the dialog and the log show them)."""
        out = [f"{self.pending} item(s) to compute" + (f" of {self.items}" if self.pending != self.items else "")]
        if self.seconds is None:
            out.append("time: unknown (no stored timings of these components yet)")
        else:
            out.append(f"time: about {_duration(self.seconds)} (from {self.timed_from} stored item(s))")
        for p in self.problems:
            out.append(f"cannot run {p.kind} {p.label}: {p.reason}")
        if self.skipped_all:
            out.append(self.skipped_all)
        return out


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _availability(cls: type, spec: ComponentSpec) -> Any:
    fn = getattr(cls, "availability", None)
    if not callable(fn):
        return None
    params = {**cls.presets.get(spec.preset, {}), **spec.params} if spec.preset else dict(spec.params)
    try:
        return fn(params) if inspect.signature(fn).parameters else fn()
    except TypeError:
        return fn()


def _trained_file_problem(cls: type, spec: ComponentSpec) -> str:
    """An attack parameter naming a trained file (UAP's perturbation) that is not there."""
    params = {s.name: s.default for s in cls.param_specs()}
    params.update(cls.presets.get(spec.preset, {}) if spec.preset else {})
    params.update(spec.params)
    for name in ("perturbation", "checkpoint"):
        if name in params:
            value = str(params[name] or "")
            if not value:
                return f"needs a trained file: set its '{name}' parameter (train one with main.py train-uap)"
            if not Path(value).expanduser().is_file():
                return f"the trained file {value} ('{name}') does not exist"
    return ""


def find_problems(exp: Experiment, metric_info: dict[str, dict[str, Any]]) -> list[Problem]:
    """Every chosen component that cannot run here, with the reason."""
    from engine.attacks import ATTACKS
    from engine.defences import DEFENCES

    out: list[Problem] = []
    for m in exp.metrics:
        info = metric_info.get(m.name)
        if info is not None and info.get("state") != "ready":
            out.append(Problem("metric", m.label, f"{info.get('state')}: {info.get('reason') or 'no reason given'}"))
    for a in exp.attacks:
        cls = ATTACKS.get(a.name)
        av = _availability(cls, a)
        reason = f"{av.state}: {av.reason}" if av is not None and av.state != "ready" else _trained_file_problem(cls, a)
        if reason:
            out.append(Problem("attack", a.label, reason))
    for d in exp.defences:
        av = _availability(DEFENCES.get(d.name), d)
        if av is not None and av.state != "ready":
            out.append(Problem("defence", d.label, f"{av.state}: {av.reason}"))
    return out


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
    from engine.store.db import ResultStore

    items = exp.items()
    done: set[str] = set()
    if store_path is not None and Path(store_path).exists():
        try:
            with ResultStore(store_path, readonly=True) as store:
                done = store.done_item_ids(exp.id)
        except Exception:  # noqa: BLE001
            done = set()
    pending = [it for it in items if it.id not in done]
    timings = stored_timings(store_path)
    seconds, based = 0.0, 0
    for it in pending:
        ts = timings.get((it.metric.label, it.attack.label))
        if not ts:
            seconds, based = -1.0, 0
            break
        seconds += sum(ts) / len(ts)
        based = max(based, len(ts))
    plan = Plan(len(items), len(pending), seconds if seconds >= 0 and pending else (0.0 if not pending else None),
                based, find_problems(exp, metric_info))
    if plan.problems:
        rest = without_problems(exp, plan.problems)
        if rest is None:
            plan.skipped_all = "nothing is left to run once these are skipped"
    return plan


def without_problems(exp: Experiment, problems: list[Problem]) -> Experiment | None:
    """``exp`` without the components that cannot run (None when no metric or attack is left)."""
    bad = {(p.kind, p.label) for p in problems}
    metrics = [m for m in exp.metrics if ("metric", m.label) not in bad]
    attacks = [a for a in exp.attacks if ("attack", a.label) not in bad]
    defences = [d for d in exp.defences if ("defence", d.label) not in bad]
    if not metrics or not attacks:
        return None
    return replace(exp, metrics=metrics, attacks=attacks, defences=defences)
