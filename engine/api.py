"""The plug-in surface: everything a metric, attack or defence of your own needs.

A plug-in imports this module and nothing else of the engine; what is here is kept
stable, the rest of the engine may change. One decorated class is one component:

Example:
    >>> import torch
    >>> from dataclasses import dataclass
    >>> from engine.api import DEFENCES, Defence, param
    >>> @dataclass
    ... class HalftoneParams:
    ...     levels: int = param(4, min=2, max=256, help="grey levels per channel")
    >>> @DEFENCES.register("halftone-demo")            # doctest: +SKIP
    ... class Halftone(Defence):
    ...     Params = HalftoneParams
    ...     def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    ...         n = self.params.levels - 1
    ...         return torch.round(x * n) / n

What is promised:

* base classes :class:`Metric`, :class:`Attack`, :class:`Defence` (and their outcome
  types :class:`AttackOutcome`, :class:`StepRecord`);
* :func:`param` for typed parameters with ranges and help (presets are a class's
  ``presets`` dict), :class:`ParamError` for a bad value;
* the registries :data:`METRICS`, :data:`ATTACKS`, :data:`DEFENCES`, whose
  ``register(name)`` decorator adds a component under ``name``;
* :class:`Availability` (``ready``, ``needs-download``, ``unavailable`` with a reason),
  which a component's ``availability()`` returns;
* helpers: :func:`check_image_batch` (that an input is a :math:`(B, 3, H, W)` tensor; values are in
  [0, 1]), :func:`attack_loss` (MSU's loss), :func:`derive_seed` (a seed from a master
  seed and identity parts) and :func:`rand_per_image` (per-image seeded draws); for an
  attack's loop :func:`loss_and_grad` (scores, MSU loss and its gradient at an iterate)
  and :class:`IterateTracker` (the step records, the best iterate, the outcome).

How a plug-in is loaded and the rules a component keeps (shapes, value range, seeds,
``lower_better``, bounds, batch safety): ``docs/plugins.md``; a working file of each
kind: ``python main.py new-plugin metric|attack|defence NAME``.
"""
from __future__ import annotations

from engine.attacks.base import ATTACKS, Attack, AttackOutcome, IterateTracker, loss_and_grad, rand_per_image
from engine.core.events import StepRecord
from engine.core.seeds import derive_seed
from engine.defences.base import DEFENCES, Defence
from engine.metrics.base import METRICS, Availability, Metric, attack_loss, check_image_batch
from engine.spec.params import ParamError, param

__all__ = [
    "ATTACKS", "Attack", "AttackOutcome", "Availability", "DEFENCES", "Defence", "IterateTracker", "METRICS",
    "Metric", "ParamError", "StepRecord", "attack_loss", "check_image_batch", "derive_seed", "loss_and_grad",
    "param", "rand_per_image",
]
