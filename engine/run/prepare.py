"""The one pre-run path, shared by the CLI, the GUI's worker and plan preview, and a Ray run.

Before anything is computed:

1. :func:`check` — every name, preset and parameter is known and valid, the batch size
   reads, and every chosen component can run here (a metric's weights are present or it
   runs with ``pretrained=0`` or its own ``weights=`` file; an attack's or defence's
   availability is ``ready``; a trained file it names exists). It returns the
   :class:`Problem` s; the GUI's plan preview lists exactly these, and
   :func:`prepare` refuses exactly these.
2. :func:`prepare` — :func:`check`, then the plan (items and units pending in the
   store), the budget calibration (on the driver: the presets file lies next to the
   store; models on the local back end's runtime when there is one) and the disk-space
   check of saved images. It returns the experiment to run (with calibrated attacks)
   and the warnings to show.

Example:
    >>> exp = Experiment(images=["a.png"], metrics=["nosuchmetric"], attacks=["fgsm"])
    >>> [p.line for p in check(exp)]                                    # doctest: +SKIP
    ["cannot run metric nosuchmetric: unknown metric 'nosuchmetric'; known: …"]
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.core.errors import EXIT_USAGE, EXIT_WEIGHTS, ExpectedError
from engine.spec.experiment import ComponentSpec, Experiment

#: the calibrated presets' file, next to the store unless given
PRESETS_NAME = "budgets.json"

#: ``Problem.kind`` of what is not a component (the batch size); nothing runs then
OPTION = "option"
#: ``Problem.kind`` of a plug-in file of the experiment that does not load; nothing runs then
PLUGIN = "plug-in"


@dataclass(frozen=True)
class Problem:
    """Something that stops a run before it starts.

    Attributes:
        kind: ``metric``, ``attack``, ``defence``, ``option`` or ``plug-in``.
        label: the component's label (or the option's name).
        reason: what is wrong and what to do, one line.
        weights: the problem is missing model weights (exit code 6, not 2).
        usage: a bad name, preset or value (its reason names the component already).
    """

    kind: str
    label: str
    reason: str
    weights: bool = False
    usage: bool = False

    @property
    def line(self) -> str:
        """The plan preview's line."""
        return f"cannot run {self.kind} {self.label}: {self.reason}"

    @property
    def message(self) -> str:
        """The CLI's line: a usage problem's reason names its component itself."""
        return self.reason if self.usage else self.line


class NotRunnable(ExpectedError):
    """:func:`prepare` refused the experiment; the message lists the problems."""

    def __init__(self, problems: list[Problem]) -> None:
        more = f" (and {len(problems) - 1} more: {'; '.join(p.message for p in problems[1:])})" if len(problems) > 1 else ""
        super().__init__(problems[0].message + more)
        self.problems = problems
        self.exit_code = EXIT_WEIGHTS if all(p.weights for p in problems) else EXIT_USAGE


@dataclass
class Prepared:
    """What :func:`prepare` hands the driver."""

    experiment: Experiment
    items: int
    pending: int
    units: int
    warnings: list[str] = field(default_factory=list)
    reused: int = 0
    notes: list[str] = field(default_factory=list)


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


def _needs_no_weights(spec: ComponentSpec) -> bool:
    """A metric with random weights (``pretrained=0``) or its own existing ``weights=`` file."""
    pretrained = spec.params.get("pretrained", True)
    if str(pretrained).strip().lower() in ("0", "false", "no", "off"):
        return True
    own = spec.params.get("weights")
    return bool(own) and Path(str(own)).expanduser().is_file()


def _plugin_problems(exp: Experiment) -> list[Problem]:
    """Load the experiment's plug-in files (:mod:`engine.plugins`); those that fail."""
    from engine.plugins import PluginError, load_path

    out: list[Problem] = []
    for path in exp.plugins:
        try:
            load_path(path)
        except PluginError as exc:
            out.append(Problem(PLUGIN, path, str(exc), usage=True))
    return out


def _usage_problems(exp: Experiment) -> list[Problem]:
    """Unknown names, presets and bad parameter values (the schema checks the options)."""
    from engine.attacks import ATTACKS
    from engine.defences import DEFENCES
    from engine.metrics import _params_class, list_metrics
    from engine.run.runtime import merged_params
    from engine.spec.params import ParamError, make_params
    from engine.spec.registry import UnknownComponent, did_you_mean

    from engine.spec.schema import experiment_problems

    out: list[Problem] = _plugin_problems(exp)
    out += [Problem(OPTION, line.split(" ", 1)[0], line, usage=True) for line in experiment_problems(exp.to_dict())]
    known = list_metrics()
    for m in exp.metrics:
        if m.name not in known:
            out.append(Problem("metric", m.label, f"unknown metric {m.name!r}{did_you_mean(m.name, known)}; "
                                                  f"known: {', '.join(known)} (see `main.py list`)", usage=True))
            continue
        try:
            make_params(_params_class(m.name), m.params)
        except (ParamError, KeyError) as exc:
            out.append(Problem("metric", m.label, f"metric {m.label}: {exc}", usage=True))
    for kind, registry, specs in (("attack", ATTACKS, exp.attacks), ("defence", DEFENCES, exp.all_defences)):
        for spec in specs:
            try:
                cls = registry.get(spec.name)
                make_params(cls.Params, merged_params(cls, spec)) if cls.Params else None
            except (UnknownComponent, KeyError, ParamError) as exc:
                # KeyError's str() quotes the message; its first argument is the text
                text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
                if isinstance(exc, ParamError):
                    text = f"{kind} {spec.label}: {text}"
                out.append(Problem(kind, spec.label, str(text), usage=True))
    return out


def _component_problems(exp: Experiment, metric_info: Mapping[str, dict[str, Any]] | None) -> list[Problem]:
    """Components that are known but cannot run here (weights, packages, trained files)."""
    from engine.attacks import ATTACKS
    from engine.defences import DEFENCES
    from engine.metrics import metric_info as read_info

    from engine.metrics import METRICS

    out: list[Problem] = []
    for m in exp.metrics:
        cls = METRICS.get(m.name) if m.name in METRICS else None
        if cls is not None and getattr(cls, "checkpoint_name", None) is None:
            av = _availability(cls, m)  # a plug-in's or torchscript's own check, with its parameters
            if av is not None and av.state != "ready":
                out.append(Problem("metric", m.label, f"{av.state}: {av.reason}"))
            continue
        info = metric_info.get(m.name) if metric_info is not None else read_info(m.name)
        state = info.get("state") or getattr(info.get("availability"), "state", None) if info else None
        if info is not None and state != "ready" and not _needs_no_weights(m):
            av = info.get("availability")
            reason = info.get("reason") or getattr(av, "reason", "") or "no reason given"
            out.append(Problem("metric", m.label, f"{state}: {reason}", weights=state == "needs-download"))
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


def check(exp: Experiment, metric_info: Mapping[str, dict[str, Any]] | None = None) -> list[Problem]:
    """Everything that stops ``exp`` from running here (empty: it can run).

    Args:
        exp: the experiment.
        metric_info: metric name → :func:`engine.metrics.metric_info` (or the GUI's
            scanned ``state``/``reason``), when already known; read here otherwise
            (offline, no model is built).
    """
    usage = _usage_problems(exp)
    bad = {(p.kind, p.label) for p in usage}
    known = replace(exp, metrics=[m for m in exp.metrics if ("metric", m.label) not in bad],
                    attacks=[a for a in exp.attacks if ("attack", a.label) not in bad],
                    defences=[d for d in exp.defences if ("defence", d.label) not in bad])
    return usage + _component_problems(known, metric_info)


def validate(exp: Experiment) -> None:
    """Raise :class:`NotRunnable` (exit code 2) for a bad name, preset, value or batch size."""
    problems = _usage_problems(exp)
    if problems:
        raise NotRunnable(problems)


def without_problems(exp: Experiment, problems: list[Problem]) -> Experiment | None:
    """``exp`` without the components that cannot run (None when no metric or attack is
    left, or a problem is not a component's)."""
    if any(p.kind in (OPTION, PLUGIN) for p in problems):
        return None
    bad = {(p.kind, p.label) for p in problems}
    metrics = [m for m in exp.metrics if ("metric", m.label) not in bad]
    attacks = [a for a in exp.attacks if ("attack", a.label) not in bad]
    defences = [d for d in exp.defences if ("defence", d.label) not in bad]
    if not metrics or not attacks:
        return None
    return replace(exp, metrics=metrics, attacks=attacks, defences=defences)


def describe_preset(entry: dict[str, Any]) -> str:
    """One line about a calibrated preset: the value found, what it reached, whether it meets the budget."""
    a = entry["achieved"]
    cost = entry.get("kind") in ("time", "queries")
    state = "meets it" if entry["close"] else (
        (f"within it but not close: one more step of {entry['param']} exceeds it" if cost else
         f"within it but not close: {entry['param']} alone cannot reach it (raise the attack's other "
         "parameters, e.g. iterations or step)") if entry["met"] else "NOT met: even the weakest setting exceeds it")
    spent = (f", {a['time']:.3g} s and {a['queries']:g} queries per image"
             if "time" in a and "queries" in a else "")
    return (f"{entry['attack']['name']} on {entry['metric']['name']}, budget {entry['budget']}: "
            f"{entry['param']}={entry['value']:.6g} → L∞ {a['linf'] * 255:.3g}/255, PSNR {a['psnr']:.2f} dB, "
            f"SSIM {a['ssim']:.4f}{spent} ({state}; {len(entry['trace'])} evaluations on "
            f"{len(entry['images'])} images)")


def calibrated_attacks(exp: Experiment, budget_text: str, presets: Path, runtime: Any,
                       log: Callable[[str], None] = lambda s: None) -> list[ComponentSpec]:
    """Each attack of ``exp`` at its calibrated strength for the budget (calibrating where
    no preset is stored; new presets are saved to ``presets``).

    Raises:
        engine.spec.budgets.BudgetError, engine.run.calibration.CalibrationError: bad
            budget, or an attack without a strength parameter.
    """
    from engine.run.calibration import CalibrationError, calibrate, calibrated_spec, find_preset, save_preset
    from engine.spec.budgets import parse_budget

    budget = parse_budget(budget_text)
    if len(exp.metrics) != 1:
        raise CalibrationError("--budget calibrates each attack on one metric: run once per metric")
    metric = exp.metrics[0]
    out = []
    for attack in exp.attacks:
        entry = find_preset(presets, metric, attack, budget)
        if entry is None:
            log(f"calibrating {attack.label} on {metric.label} to {budget.label} …")
            entry = calibrate(exp.images, metric, attack, budget, runtime=runtime, seed=exp.seed)
            save_preset(presets, entry)
        log(describe_preset(entry))
        out.append(calibrated_spec(attack, entry))
    return out


def apply_budget(exp: Experiment, budget_text: str | None, presets: Path, runtime: Any,
                 log: Callable[[str], None]) -> Experiment:
    """``exp`` with calibrated attacks and ``budget`` set (unchanged without a budget)."""
    if not budget_text:
        return exp
    return replace(exp, attacks=calibrated_attacks(exp, budget_text, presets, runtime, log), budget=budget_text)


def prepare(exp: Experiment, store: Any, *, backend: Any = None, presets: str | Path | None = None,
            log: Callable[[str], None] = lambda s: None, checked: bool = False) -> Prepared:
    """Check, plan, calibrate and size a run of ``exp`` into the open ``store``.

    Args:
        exp: the experiment.
        store: the open :class:`~engine.store.db.ResultStore` the run will write.
        backend: the back end that will run it; a local one lends its runtime to the
            calibration (its models are then built once). A remote (Ray) run calibrates
            here, on the driver, on a runtime of ``exp.device``.
        presets: the calibrated presets' file (default ``budgets.json`` next to the store).
        log: where progress lines of the calibration go.
        checked: the caller has just run :func:`check` on ``exp`` (it is not run again).

    Returns:
        The experiment to run (budget-calibrated attacks), its item counts and the
        warnings to show (the disk-space estimate of saved images).

    Raises:
        NotRunnable: :func:`check` found problems (exit code 6 when all are missing
            weights, else 2).
    """
    from engine.run.batching import plan_units
    from engine.run.identity import reuse_plan

    problems = [] if checked else check(exp)
    if problems:
        raise NotRunnable(problems)
    if exp.budget:
        from engine.run.runtime import Runtime

        runtime = getattr(backend, "runtime", None) or Runtime(exp.device)
        path = Path(presets) if presets else Path(store.path).parent / PRESETS_NAME
        exp = apply_budget(exp, exp.budget, path, runtime, log)
    from engine.plugins.records import recorded

    exp = recorded(exp)  # the plug-in files it uses and their code (part of its identity)
    reuse = reuse_plan(exp, store)
    items, pending = reuse.items, reuse.pending
    warnings = []
    if exp.save_images or exp.keep_attacked:
        from engine.store.diskspace import space_warning

        warning = space_warning(exp, store, pending)
        if warning:
            warnings.append(warning)
    return Prepared(exp, len(items), len(pending), len(plan_units(pending, exp)), warnings, reuse.reused,
                    reuse.lines())


def plan_counts(exp: Experiment, store_path: str | Path | None) -> dict[str, Any]:
    """What a run of ``exp`` into the store at ``store_path`` would compute and reuse,
    read without writing (the GUI's plan preview): :meth:`ReusePlan.summary` plus
    ``pending`` (the items to compute) and ``notes``."""
    from engine.run.identity import reuse_plan
    from engine.store.db import ResultStore

    store = None
    if store_path is not None and Path(store_path).exists():
        try:
            store = ResultStore(store_path, readonly=True)
        except ExpectedError:
            store = None
    try:
        reuse = reuse_plan(exp, store)
    finally:
        if store is not None:
            store.close()
    return {**reuse.summary(), "pending": reuse.pending, "notes": reuse.lines()}
