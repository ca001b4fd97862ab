"""Perturbation budgets: ``linf=4/255``, ``psnr=40``, ``ssim=0.98`` and the named benchmark
categories ``linf-2``, ``linf-4``, ``linf-8``, ``linf-16`` (L∞ = k/255).

A budget bounds the *mean over images* of one measure of the perturbation x_a − x:
L∞ at most the target, PSNR or SSIM at least the target. :func:`size` maps each measure
to "how visible" (higher = stronger attack) so one search serves all three. Measuring an
image pair is :func:`engine.run.calibration.measure`'s job.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.core.errors import ExpectedError

KINDS = ("linf", "psnr", "ssim")
#: measure → the raw-CSV column of the attacked image against the clean one
COLUMN = {"linf": "l_inf_clear_attacked", "psnr": "psnr_clear_attacked", "ssim": "ssim_clear_attacked"}
#: how close to the target a calibration must land (on the allowed side)
TOLERANCE = {"linf": 0.25 / 255, "psnr": 0.25, "ssim": 0.0025}
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
    def tolerance(self) -> float:
        return TOLERANCE[self.kind]

    def size(self, value: float) -> float:
        """Visibility of a measured value: larger = a stronger perturbation."""
        return value if self.kind == "linf" else -value

    def meets(self, value: float) -> bool:
        """Whether a measured mean stays within the budget (up to float noise)."""
        return self.size(value) <= self.size(self.target) + 1e-9

    def close(self, value: float) -> bool:
        """Within the budget and no further than the tolerance from it."""
        return self.meets(value) and abs(value - self.target) <= self.tolerance


def parse_budget(text: str) -> Budget:
    """``linf-4`` / ``linf=4/255`` / ``psnr=40`` / ``ssim=0.98`` → :class:`Budget`.

    Raises:
        BudgetError: with the accepted forms.
    """
    from engine.spec.experiment import parse_scalar

    label = text.strip()
    expr = NAMED.get(label.lower(), label)
    kind, sep, value = expr.partition("=")
    kind = kind.strip().lower().replace("l_inf", "linf")
    v = parse_scalar(value.strip()) if sep else None
    if kind not in KINDS or not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
        raise BudgetError(f"budget {text!r} not understood: use a name ({', '.join(NAMED)}) or "
                          "linf=4/255, psnr=40, ssim=0.98")
    if kind == "ssim" and v > 1:
        raise BudgetError(f"budget {text!r}: SSIM is at most 1")
    return Budget(kind, float(v), label)


def budget_columns(label: str | None, row: dict[str, Any]) -> dict[str, Any]:
    """What a row records about its run's budget: the label, the value its attacked image
    reached (copied from the row's pair column) and whether it is within the budget."""
    if not label:
        return {}
    b = parse_budget(label)
    reached = row.get(COLUMN[b.kind])
    ok = isinstance(reached, (int, float)) and math.isfinite(reached)
    return {"budget": label, "budget_reached": reached if ok else None, "budget_met": b.meets(reached) if ok else None}
