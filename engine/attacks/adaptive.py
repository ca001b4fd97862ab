"""Defence-aware (adaptive) attacks: attack the metric behind a defence, M∘D.

Any attack can target :class:`DefendedMetric` instead of the bare metric. How the gradient
gets through D (the *mode*, recorded in the results):

* ``through``: D is differentiable and deterministic; autograd goes through D.
* ``bpda``: D is not differentiable (a real JPEG codec, NLM, colour quantisation);
  Backward Pass Differentiable Approximation (Athalye, Carlini, Wagner, "Obfuscated
  Gradients Give a False Sense of Security", ICML 2018): the forward pass
  uses D(x), the backward pass treats D as the identity, ``x + (D(x) − x).detach()``, so
  the gradient is ∇M evaluated at D(x). When D changes the size, the identity is replaced
  by a bilinear resize of x to D(x)'s size.
* ``eot``: D is random; Expectation over Transformation (Athalye, Engstrom, Ilyas, Kwok,
  "Synthesizing Robust Adversarial Examples", ICML 2018): the
  score is the mean of M over N draws, draw k seeded with ``seed + k`` (so reruns are
  identical); each draw goes through D (differentiable D) or uses BPDA (otherwise;
  :attr:`DefendedMetric.uses_bpda` says which).

The runner passes a seed derived from the item's seed (``derive_seed(item.seed, "eot")``),
so the draws the attack optimises over are not the draw the evaluation applies.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from engine.defences.base import Defence
from engine.metrics.base import Metric

MODES = ("through", "bpda", "eot")


def defence_aware_mode(defence: Defence) -> str:
    """``"eot"`` for a random defence, else ``"through"`` if differentiable, else ``"bpda"``."""
    if getattr(defence, "random", False):
        return "eot"
    return "through" if getattr(defence, "differentiable", True) else "bpda"


def bpda(x: torch.Tensor, defended: torch.Tensor) -> torch.Tensor:
    """Forward: ``defended``; backward: identity to ``x`` (bilinear resize if sizes differ)."""
    base = x
    if tuple(defended.shape[-2:]) != tuple(x.shape[-2:]):
        base = F.interpolate(x, size=tuple(defended.shape[-2:]), mode="bilinear", align_corners=False)
    # == x + (D(x) − x).detach() in value and gradient, but bit-exact D(x) in the forward pass
    return defended.detach() + (base - base.detach())


class DefendedMetric(Metric):
    """The metric M seen through the defence D: ``score(x) = M(D(x))`` (mean over draws for EOT).

    Same ``lower_better``, ``bounds`` and ``range`` as M, so the MSU loss is unchanged.

    Args:
        metric: the metric M.
        defence: the defence D (``d(x, seed=s)``, ``.differentiable``, ``.random``).
        eot_samples: draws per evaluation in ``eot`` mode (ignored otherwise).
        seed: base seed of the draws; draw k uses ``seed + k``. For a batch of several
            items, one seed per image (each image gets the draws it gets alone).
        mode: force a mode (default :func:`defence_aware_mode`); forcing ``bpda`` on a
            differentiable D is allowed, ``through`` on a non-differentiable one is not.

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1].
        - Output: :math:`(B,)`.

    Example:
        >>> target = DefendedMetric(metric, jpeg)            # mode "bpda"
        >>> out = IFGSM()(x, target)
    """

    def __init__(self, metric: Metric, defence: Defence, eot_samples: int = 1,
                 seed: int | Sequence[int] = 0, mode: str | None = None) -> None:
        super().__init__()
        mode = mode or defence_aware_mode(defence)
        if mode not in MODES:
            raise ValueError(f"unknown defence-aware mode {mode!r}; known: {', '.join(MODES)}")
        differentiable = bool(getattr(defence, "differentiable", True))
        if mode == "through" and not differentiable:
            raise ValueError(f"defence {defence.name!r} is not differentiable: use 'bpda' or 'eot'")
        if eot_samples < 1:
            raise ValueError("eot_samples must be ≥ 1")
        self.metric = metric
        self.defence = defence
        self.mode = mode
        self.uses_bpda = mode == "bpda" or (mode == "eot" and not differentiable)
        self.eot_samples = int(eot_samples) if mode == "eot" else 1
        self.seed: int | list[int] = [int(s) for s in seed] if isinstance(seed, Sequence) else int(seed)
        self.name = f"{metric.name}@{defence.name}"  # type: ignore[misc]
        self.lower_better = metric.lower_better
        self.bounds = tuple(metric.bounds)  # type: ignore[assignment]

    @property
    def device(self) -> torch.device:
        return self.metric.device

    def _draw_seed(self, k: int) -> int | list[int]:
        return [s + k for s in self.seed] if isinstance(self.seed, list) else self.seed + k

    def _defended(self, x: torch.Tensor, seed: int | list[int]) -> torch.Tensor:
        if self.uses_bpda:
            with torch.no_grad():
                d = self.defence(x.detach(), seed=seed)
            return bpda(x, d)
        return self.defence(x, seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grad = torch.is_grad_enabled()
        total = None
        for k in range(self.eot_samples):
            s = self.metric.score(self._defended(x, self._draw_seed(k)), grad=grad)
            total = s if total is None else total + s
        return total / self.eot_samples


def target_metric(metric: Metric, defence: Defence | None, eot_samples: int = 1,
                  seed: int | Sequence[int] = 0) -> tuple[Metric, str]:
    """What an attack should target to be defence-aware, and the mode used.

    Returns ``(metric, "direct")`` when there is no defence (or the identity ``none``),
    else ``(DefendedMetric(metric, defence, eot_samples, seed), mode)``.
    """
    if defence is None or getattr(defence, "name", "") == "none":
        return metric, "direct"
    dm = DefendedMetric(metric, defence, eot_samples=eot_samples, seed=seed)
    return dm, dm.mode
