"""Budget calibration: find the strength of an attack whose mean perturbation meets a budget.

Each attack declares its strength parameter (``Attack.strength_param``: ε, a learning
rate, an RMSE radius…). The search assumes a larger strength perturbs more and looks for
the *largest* strength whose mean measure over a few images stays within the budget:
from the attack's own value, secant steps on a log scale (see :func:`search`), within the
parameter's declared bounds, until the mean lands within
:data:`engine.spec.budgets.TOLERANCE` of the target on the allowed side, or ``max_steps``
evaluations are spent.

A *cost* budget (``time=1s``, ``queries=1000``: IOI's equal-speed comparison) searches
the attack's iteration or query count instead (:func:`cost_spec`): the largest count whose
mean time or metric evaluations per image stay within the budget (:func:`search_cost`:
secant steps on the about-affine cost, inside the bracket, bisection where a step would
leave it).

Results are presets: JSON entries keyed by metric, attack and budget, with the value
found, the mean L∞/PSNR/SSIM, time and queries per image it reached and every
evaluation of the search.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.core.errors import ExpectedError
from engine.evaluation.pairs import PAIR_MEASURES
from engine.metrics.counting import QueryCounter, queries_of
from engine.run.scoring import sync
from engine.spec.budgets import Budget
from engine.core.seeds import derive_seed
from engine.spec.experiment import ComponentSpec

PRESET_VERSION = 1
MAX_STEPS = 24
CALIBRATION_IMAGES = 3


def measure(kind: str, x: torch.Tensor, x_adv: torch.Tensor) -> float:
    """One image pair's measure (the same functions as the raw CSV's pair columns)."""
    return float(PAIR_MEASURES["l_inf" if kind == "linf" else kind](x, x_adv).mean().item())


class CalibrationError(ExpectedError, ValueError):
    """An attack cannot be calibrated (no strength parameter, unreadable preset file…)."""


def strength_spec(attack_cls: type):
    """The :class:`engine.spec.params.ParamSpec` of an attack's strength parameter."""
    from engine.spec.params import param_specs

    name = getattr(attack_cls, "strength_param", None)
    specs = {p.name: p for p in param_specs(attack_cls.Params)} if attack_cls.Params else {}
    if not name or name not in specs:
        raise CalibrationError(f"attack {attack_cls.name!r} declares no strength parameter to calibrate "
                               f"(strength_param={name!r})")
    return specs[name]


#: the iteration-count parameters a cost budget searches, in order, when an attack names none
COST_PARAMS = ("iters", "queries")


def cost_spec(attack_cls: type):
    """The :class:`engine.spec.params.ParamSpec` a time/query budget searches: the attack's
    ``cost_param``, else its ``iters`` or ``queries`` (an integer count); ``cost_param = ""``
    declares a fixed cost (FGSM's one step).

    Raises:
        CalibrationError: the attack has no such count.
    """
    from engine.spec.params import param_specs

    specs = {p.name: p for p in param_specs(attack_cls.Params)} if attack_cls.Params else {}
    name = getattr(attack_cls, "cost_param", None)
    if name is None:
        name = next((n for n in COST_PARAMS if n in specs), None)
    if not name or name not in specs or specs[name].type is not int:
        raise CalibrationError(f"attack {attack_cls.name!r} has no iteration or query count to calibrate to a "
                               "time or query budget (cost_param, iters or queries)")
    return specs[name]


def _key(metric: ComponentSpec, attack: ComponentSpec, budget: Budget) -> str:
    return f"{metric.key}|{attack.key}|{budget.label}"


def load_presets(path: str | Path) -> dict[str, Any]:
    """The preset file's entries (empty when the file does not exist)."""
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return dict(data["presets"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"cannot read budget presets {p}: {exc} (delete it to calibrate again)") from None


def save_preset(path: str | Path, entry: dict[str, Any]) -> Path:
    """Add or replace one entry in the preset file (written atomically)."""
    p = Path(path)
    presets = load_presets(p)
    presets[entry["key"]] = entry
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps({"version": PRESET_VERSION, "presets": presets}, indent=2, sort_keys=True),
                   encoding="utf-8")
    os.replace(tmp, p)
    return p


def find_preset(path: str | Path, metric: ComponentSpec, attack: ComponentSpec, budget: Budget) -> dict | None:
    return load_presets(path).get(_key(metric, attack, budget))


def calibrated_spec(attack: ComponentSpec, entry: dict[str, Any]) -> ComponentSpec:
    """The attack with its strength set to the calibrated value."""
    return ComponentSpec(attack.name, {**attack.params, entry["param"]: entry["value"]}, attack.preset)


class _Evaluator:
    """Mean perturbation measures, attack time and queries per image of the attack at a
    parameter value (memoised)."""

    def __init__(self, images: list[torch.Tensor], names: list[str], metric, attack_cls: type,
                 base_params: dict[str, Any], pname: str, seed: int) -> None:
        self.images, self.names, self.metric = images, names, metric
        self.cls, self.base, self.pname, self.seed = attack_cls, base_params, pname, seed
        self.seen: dict[Any, dict[str, float]] = {}

    def warm_up(self) -> None:
        """One untimed gradient pass per image, so the first timed evaluation does not pay
        for lazy initialisation (kernels, caches, the metric's first call)."""
        for x in self.images:
            xi = x.detach().clone().requires_grad_(True)
            try:
                self.metric.score(xi, grad=True).sum().backward()
            except RuntimeError:  # a metric without gradient: a plain forward
                self.metric.score(x)

    def __call__(self, value: Any) -> dict[str, float]:
        if value not in self.seen:
            attack = self.cls({**self.base, self.pname: value})
            sums = {"linf": 0.0, "psnr": 0.0, "ssim": 0.0, "time": 0.0, "queries": 0.0}
            for x, name in zip(self.images, self.names):
                gen = torch.Generator().manual_seed(derive_seed(self.seed, "calibrate", name))
                sync(x.device)
                t0 = time.perf_counter()
                with QueryCounter(self.metric) as counter:
                    outcome = attack(x, self.metric, generator=gen)
                sync(x.device)
                sums["time"] += time.perf_counter() - t0
                sums["queries"] += queries_of(outcome, counter.images / x.shape[0])
                xa = outcome.image.detach()
                for k in ("linf", "psnr", "ssim"):
                    sums[k] += min(measure(k, x, xa), 80.0) if k == "psnr" else measure(k, x, xa)
            self.seen[value] = {k: v / len(self.images) for k, v in sums.items()}
        return self.seen[value]


def _log_size(kind: str, value: float) -> float:
    """A measure on a scale roughly linear in log strength: log L∞; PSNR ≈ −20·log10 of the
    perturbation's size; 1 − SSIM grows about with its square."""
    if kind == "linf":
        return math.log(max(value, 1e-12))
    if kind == "psnr":
        return -value * math.log(10) / 20
    return 0.5 * math.log(max(1.0 - value, 1e-12))


def search(evaluate: Callable[[Any], dict[str, float]], budget: Budget, start: Any, lo_bound: float | None,
           hi_bound: float | None, integer: bool, max_steps: int = MAX_STEPS) -> tuple[Any, list[dict]]:
    """The largest strength whose mean measure meets ``budget``.

    Secant steps in (log strength, :func:`_log_size`) space (slope 1 until two points are
    known, each jump at most ×8), kept inside the bracket of the best strength within
    the budget and the smallest over it; a geometric midpoint where a step would leave it.

    Returns:
        (the strength found, the evaluations made as ``{"value", "linf", "psnr", "ssim"}``).
        When even the smallest strength exceeds the budget, that smallest strength; when
        the measure stops growing before the budget (e.g. I-FGSM's L∞ is capped at
        iters × α), the smallest strength that reached the cap.
    """
    trace: list[dict] = []
    lo_lim = (1 if integer else 1e-6) if lo_bound is None or lo_bound <= 0 else lo_bound
    hi_lim = math.inf if hi_bound is None else hi_bound
    target = _log_size(budget.kind, budget.target)
    v = min(max(start if start and start > 0 else lo_lim, lo_lim), hi_lim)
    good: tuple[Any, float] | None = None  # (strength, log size) within the budget
    bad: tuple[Any, float] | None = None   # over it
    prev: tuple[Any, float] | None = None
    while len(trace) < max_steps:
        m = evaluate(v)
        trace.append({"value": v, **m})
        value, size = m[budget.kind], _log_size(budget.kind, m[budget.kind])
        if budget.close(value):
            return v, trace
        if budget.meets(value):
            if good is not None and size <= good[1] + 1e-12 and bad is None:  # saturated
                return good[0], trace
            if good is None or v > good[0]:
                good = (v, size)
        elif bad is None or v < bad[0]:
            bad = (v, size)
        slope = 1.0
        if prev is not None and v != prev[0] and prev[0] > 0 and v > 0:
            s = (size - prev[1]) / (math.log(v) - math.log(prev[0]))
            slope = min(max(s, 0.2), 5.0) if math.isfinite(s) and s > 0 else 1.0
        prev = (v, size)
        ratio = math.exp(min(max((target - size) / slope, -math.log(8)), math.log(8)))
        nxt = min(max(v * ratio, lo_lim), hi_lim)
        lo_b = good[0] if good else lo_lim
        hi_b = bad[0] if bad else hi_lim
        if not (lo_b < nxt < hi_b) and good and bad:
            nxt = math.sqrt(good[0] * bad[0]) if good[0] > 0 else (good[0] + bad[0]) / 2
        if integer:
            nxt = int(round(nxt))
            nxt = min(max(nxt, good[0] + 1 if good else lo_lim), bad[0] - 1 if bad else hi_lim)
        if nxt == v or (good and bad and integer and bad[0] - good[0] <= 1):
            break
        if (good is None and v <= lo_lim and nxt <= lo_lim) or (bad is None and v >= hi_lim and nxt >= hi_lim):
            break
        v = nxt
    return (good[0] if good is not None else lo_lim), trace


def search_cost(evaluate: Callable[[Any], dict[str, float]], budget: Budget, start: int, lo_bound: float | None,
                hi_bound: float | None, max_steps: int = MAX_STEPS) -> tuple[int, list[dict]]:
    """The largest count whose mean time or queries per image meets the cost ``budget``.

    The cost is about affine in the count (a fixed part plus a part per iteration): from
    ``start``, a proportional step (one point known) or a secant through the last two
    points aims at the target, floored, kept strictly inside the bracket of the largest
    count within the budget and the smallest over it (their midpoint where the step
    would leave it); it stops when a count lands within the tolerance, or the bracket
    closes.

    Returns:
        (the count found, the evaluations made). When even ``lo_bound`` costs more than
        the budget, ``lo_bound``.
    """
    trace: list[dict] = []
    lo_lim = int(lo_bound) if lo_bound is not None and lo_bound >= 1 else 1
    hi_lim = int(hi_bound) if hi_bound is not None else 10 ** 9
    v = min(max(int(start or lo_lim), lo_lim), hi_lim)
    good: int | None = None   # the largest count within the budget
    bad: int | None = None    # the smallest count over it
    points: list[tuple[int, float]] = []
    while len(trace) < max_steps:
        m = evaluate(v)
        trace.append({"value": v, **m})
        cost = m[budget.kind]
        if budget.close(cost):
            return v, trace
        if budget.meets(cost):
            good = v if good is None else max(good, v)
        else:
            bad = v if bad is None else min(bad, v)
        points = [p for p in points if p[0] != v][-1:] + [(v, cost)]
        if len(points) == 2 and points[1][1] != points[0][1]:
            (v1, c1), (v2, c2) = points
            guess = v2 + (budget.target - c2) * (v2 - v1) / (c2 - c1)
        else:
            guess = v * budget.target / max(cost, 1e-12)
        nxt = int(math.floor(min(max(guess, v / 8), v * 8)))
        lo_b, hi_b = (good if good is not None else lo_lim - 1), (bad if bad is not None else hi_lim + 1)
        if hi_b - lo_b <= 1:
            break
        if not lo_b < nxt < hi_b:
            nxt = (lo_b + hi_b) // 2 if good is not None and bad is not None else min(max(nxt, lo_b + 1), hi_b - 1)
        v = nxt
    return (good if good is not None else lo_lim), trace


def calibrate(images: list[str], metric: ComponentSpec, attack: ComponentSpec, budget: Budget, *,
              runtime: Any = None, seed: int = 0, n_images: int = CALIBRATION_IMAGES,
              max_steps: int = MAX_STEPS) -> dict[str, Any]:
    """Calibrate one attack on one metric to a budget.

    Args:
        images: image files; the first ``n_images`` are used.
        metric, attack: the components (the attack's own parameters are kept; only its
            strength parameter, or for a time/query budget its iteration or query count,
            is searched).
        budget: from :func:`engine.spec.budgets.parse_budget`.
        runtime: an ``engine.run.runtime.Runtime`` (device, cached metric); CPU when None.

    Returns:
        The preset entry (``key``, ``metric``, ``attack``, ``budget``, ``param``, ``value``,
        ``achieved`` {linf, psnr, ssim, time, queries}, ``met``, ``close``, ``images``, ``trace``).
    """
    from engine.attacks import ATTACKS
    from engine.io.images import load_image
    from engine.run.runtime import Runtime, merged_params

    runtime = runtime or Runtime("cpu")
    cls = ATTACKS.get(attack.name)
    spec = cost_spec(cls) if budget.cost else strength_spec(cls)
    base = merged_params(cls, attack)
    if not images:
        raise CalibrationError("no images to calibrate on")
    chosen = images[:n_images]
    tensors = [load_image(p).tensor.to(runtime.device) for p in chosen]
    names = [Path(p).name for p in chosen]
    ev = _Evaluator(tensors, names, runtime.metric(metric), cls, base, spec.name, seed)
    integer = spec.type is int
    start = base.get(spec.name, spec.default)
    if budget.cost:
        if budget.kind == "time":
            ev.warm_up()
        value, trace = search_cost(ev, budget, start, spec.min, spec.max, max_steps)
    else:
        value, trace = search(ev, budget, start, spec.min, spec.max, integer, max_steps)
    achieved = ev(value)
    return {"key": _key(metric, attack, budget), "metric": metric.to_dict(), "attack": attack.to_dict(),
            "budget": budget.label, "kind": budget.kind, "target": budget.target, "tolerance": budget.tolerance,
            "param": spec.name, "value": value, "achieved": achieved, "met": budget.meets(achieved[budget.kind]),
            "close": budget.close(achieved[budget.kind]), "images": names, "seed": seed, "trace": trace}
