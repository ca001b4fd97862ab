"""Budgets: what attacks are compared at.

*Visibility* budgets (``linf=4/255``, ``psnr=40``, ``ssim=0.98`` and the named benchmark
categories ``linf-2``, ``linf-4``, ``linf-8``, ``linf-16``, L∞ = k/255) bound the *mean
over images* of one measure of the perturbation x_a − x: L∞ at most the target, PSNR or
SSIM at least the target. :meth:`Budget.size` maps each measure to "how visible" (higher
= stronger attack) so one search serves all three; calibration searches the attack's
strength parameter. Measuring an image pair is :func:`engine.run.calibration.measure`'s job.

*Cost* budgets (``time=1s``, ``time=500ms``, ``queries=1000``) compare attacks at equal
speed, as IOI (Shumitskaya et al., ICML 2024) argues a benchmark must: the mean attack
time per image at most the target, or the mean number of metric evaluations (forward
passes, gradient ones included) per image at most the target. Calibration searches the
attack's iteration or query count (:attr:`engine.attacks.base.Attack.cost_param`); rows
then report the time (``attack_time``) or queries (``attack_queries``) they reached.
:meth:`Budget.title` says it in words: "at 1 s per image", "at 1000 queries per image".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.core.errors import ExpectedError

VISIBILITY_KINDS = ("linf", "psnr", "ssim")
COST_KINDS = ("time", "queries")
KINDS = VISIBILITY_KINDS + COST_KINDS
#: measure → the raw-CSV column a row reports it in
COLUMN = {"linf": "l_inf_clear_attacked", "psnr": "psnr_clear_attacked", "ssim": "ssim_clear_attacked",
          "time": "attack_time", "queries": "attack_queries"}
#: how close to the target a calibration must land (on the allowed side); cost budgets:
#: a share of the target (time is noisy; a query count moves in whole iterations)
TOLERANCE = {"linf": 0.25 / 255, "psnr": 0.25, "ssim": 0.0025}
COST_TOLERANCE = {"time": 0.15, "queries": 0.05}
NAMED = {f"linf-{k}": f"linf={k}/255" for k in (2, 4, 8, 16)}
BUDGET_COLUMNS = ["budget", "budget_reached", "budget_met"]


class BudgetError(ExpectedError, ValueError):
    """A budget expression cannot be read."""


@dataclass(frozen=True)
class Budget:
    """One budget: which measure, its target value and the label rows carry."""

    kind: str
    target: float
    label: str

    @property
    def cost(self) -> bool:
        """A time or query budget (calibrates the iteration count, not the strength)."""
        return self.kind in COST_KINDS

    @property
    def tolerance(self) -> float:
        if self.cost:
            return max(COST_TOLERANCE[self.kind] * self.target, 1.0 if self.kind == "queries" else 0.0)
        return TOLERANCE[self.kind]

    @property
    def title(self) -> str:
        """The budget in words, for tables and plots: "at 1 s per image", "at L∞ ≤ 4/255"."""
        return budget_title(self.kind, self.target)

    def size(self, value: float) -> float:
        """Visibility (or cost) of a measured value: larger = a stronger (costlier) attack."""
        return value if self.kind in ("linf", *COST_KINDS) else -value

    def meets(self, value: float) -> bool:
        """Whether a measured mean stays within the budget (up to float noise)."""
        return self.size(value) <= self.size(self.target) + 1e-9

    def close(self, value: float) -> bool:
        """Within the budget and no further than the tolerance from it."""
        return self.meets(value) and abs(value - self.target) <= self.tolerance


def _number(text: str) -> float | None:
    """``"4/255"``, ``"40"`` → float; anything else → None."""
    from engine.spec.experiment import parse_scalar

    v = parse_scalar(text)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _seconds(text: str) -> float | None:
    """``"1s"``, ``"0.5"``, ``"500ms"``, ``"2 min"`` → seconds; None when not a duration."""
    t = text.strip().lower().replace(" ", "")
    for suffix, scale in (("ms", 1e-3), ("min", 60.0), ("s", 1.0)):
        if t.endswith(suffix):
            v = _number(t[: -len(suffix)])
            return None if v is None else v * scale
    return _number(t)


def budget_title(kind: str, target: float) -> str:
    """``("time", 1.0)`` → "at 1 s per image"; ``("queries", 1000)`` → "at 1000 queries per image";
    ``("linf", 4/255)`` → "at L∞ ≤ 4/255"; ``("psnr", 40)`` → "at PSNR ≥ 40 dB"."""
    if kind == "time":
        return f"at {target * 1000:g} ms per image" if target < 1 else f"at {target:g} s per image"
    if kind == "queries":
        return f"at {target:g} queries per image"
    if kind == "linf":
        k = target * 255
        return f"at L∞ ≤ {k:g}/255" if abs(k - round(k, 3)) < 1e-9 else f"at L∞ ≤ {target:g}"
    return f"at PSNR ≥ {target:g} dB" if kind == "psnr" else f"at SSIM ≥ {target:g}"


def parse_budget(text: str) -> Budget:
    """``linf-4`` / ``linf=4/255`` / ``psnr=40`` / ``ssim=0.98`` / ``time=1s`` /
    ``queries=1000`` → :class:`Budget`.

    Raises:
        BudgetError: with the accepted forms.
    """
    label = text.strip()
    expr = NAMED.get(label.lower(), label)
    kind, sep, value = expr.partition("=")
    kind = kind.strip().lower().replace("l_inf", "linf")
    v = (_seconds(value) if kind == "time" else _number(value.strip())) if sep else None
    if kind not in KINDS or v is None or not math.isfinite(v) or v <= 0:
        raise BudgetError(f"budget {text!r} not understood: use a name ({', '.join(NAMED)}) or "
                          "linf=4/255, psnr=40, ssim=0.98 (visibility), time=1s, queries=1000 (cost per image)")
    if kind == "ssim" and v > 1:
        raise BudgetError(f"budget {text!r}: SSIM is at most 1")
    if kind == "queries" and v != int(v):
        raise BudgetError(f"budget {text!r}: a query count is a whole number")
    return Budget(kind, float(v), label)


def budget_text_title(label: str | None) -> str:
    """A row's budget label in words ("" for none; the label itself when unreadable)."""
    if not label:
        return ""
    try:
        return parse_budget(label).title
    except BudgetError:
        return str(label)


def budget_columns(label: str | None, row: dict[str, Any]) -> dict[str, Any]:
    """What a row records about its run's budget: the label, the value its attacked image
    reached (copied from the row's pair column) and whether it is within the budget."""
    if not label:
        return {}
    b = parse_budget(label)
    reached = row.get(COLUMN[b.kind])
    ok = isinstance(reached, (int, float)) and math.isfinite(reached)
    return {"budget": label, "budget_reached": reached if ok else None, "budget_met": b.meets(reached) if ok else None}
