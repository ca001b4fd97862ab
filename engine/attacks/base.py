"""Attack protocol: a generator of step records that returns the adversarial image.

An attack raises the quality score a metric reports (white box). Every attack minimises
the MSU loss ``1 − sign·M(x)/range`` (see :func:`engine.metrics.base.attack_loss`),
possibly with extra terms. Running one looks like::

    gen = attack.run(x, metric, generator=torch.Generator().manual_seed(0))
    try:
        while True:
            step = next(gen)          # a StepRecord; the caller may stop here
    except StopIteration as stop:
        outcome = stop.value          # AttackOutcome with .image

Attacks that optimise other variables (colour curves, Adam on pixels), need the
reference image (all of them get ``x``, the original) or train over a folder (UAP, via a
perturbation file) fit the same protocol: only :meth:`Attack.run` is required.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Generator, Union

import torch

from engine.core.events import StepRecord
from engine.metrics.base import Metric, PluginOutputError, attack_loss, defined_at
from engine.spec.params import make_params, param, param_specs, params_to_dict
from engine.spec.registry import Registry


#: what an attack draws its randomness from: one CPU generator, or (a batch of several
#: items) one generator per image, so each image gets the draws it gets on its own
Generators = Union[torch.Generator, Sequence[torch.Generator], None]


@dataclass
class AttackOutcome:
    """The result of an attack run.

    Attributes:
        image: the adversarial batch, :math:`(B, 3, H, W)` in [0, 1].
        selection: ``"last"`` (final iterate) or ``"best"`` (best-scoring iterate seen).
        iteration_used: per image, which iterate was returned (0 = the clean image).
        steps: every step record, in order.
        mode: how the metric was attacked: ``"direct"``, or for a defended metric
            ``"through"``/``"bpda"``/``"eot"`` (set by the defence-aware wrapper).
        scores: the attacked metric's scores of ``image`` :math:`(B,)`, computed without
            gradient by the attack's last step (so the caller need not score it again);
            ``None`` when the attack did not score the returned image that way (best
            iterate: its scores came from a gradient pass).
    """

    image: torch.Tensor
    selection: str
    iteration_used: list[int]
    steps: list[StepRecord] = field(default_factory=list)
    mode: str = "direct"
    scores: torch.Tensor | None = None


@dataclass
class AttackParams:
    """Parameters every attack has."""

    keep_best: bool = param(False, help="return the best-scoring iterate seen instead of the last")


AttackRun = Generator[StepRecord, None, AttackOutcome]


class Attack:
    """Base class. Subclasses set ``Params`` (a dataclass deriving from AttackParams),
    optionally ``presets`` (label → parameter overrides) and ``literal_presets``, and
    implement :meth:`run`."""

    name: ClassVar[str] = "attack"
    Params: ClassVar[type] = AttackParams
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: the attack reads a file made beforehand over a folder (e.g. a trained UAP)
    universal: ClassVar[bool] = False
    #: presets that reproduce MSU's published attack code numerically (checked against an
    #: independent loop in the tests): label → the reference file, under
    #: github.com/msu-video-group; the GUI tags them "(MSU code)"
    literal_presets: ClassVar[dict[str, str]] = {}
    #: the parameter budget calibration searches (larger = stronger perturbation);
    #: ε for most attacks, a learning rate, radius or query budget for others
    strength_param: ClassVar[str | None] = "eps"
    #: the integer count a time or query budget searches (IOI's equal-speed comparison);
    #: None: ``iters`` or ``queries``, whichever the attack has; "": a fixed cost
    cost_param: ClassVar[str | None] = None
    #: whether images attacked together in a batch get what each gets alone (per-image
    #: random draws, no coupling through the optimiser); when False, batch 1 is used
    batchable: ClassVar[bool] = True
    #: set by the plug-in loader: a plug-in attack's outcome is checked (shape, finite)
    plugin: ClassVar[str | None] = None

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        if params is None or isinstance(params, dict):
            params = make_params(self.Params, {**(params or {}), **overrides})
        elif overrides:
            params = make_params(self.Params, {**params_to_dict(params), **overrides})
        self.params = params

    @classmethod
    def from_preset(cls, label: str, **overrides: Any) -> "Attack":
        if label not in cls.presets:
            raise KeyError(f"{cls.name}: unknown preset {label!r}; known: {', '.join(cls.presets)}")
        return cls({**cls.presets[label], **overrides})

    @classmethod
    def param_specs(cls):
        return param_specs(cls.Params)

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: Generators = None) -> AttackRun:
        """Attack the batch ``x``; every image is attacked independently of the others.

        Args:
            x: :math:`(B, 3, H, W)` in [0, 1].
            metric: the metric to raise.
            generator: a CPU generator, or one per image (see :func:`rand_per_image`).
        """
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, metric: Metric, *,
                 generator: Generators = None) -> AttackOutcome:
        """Run to completion and return the outcome (convenience)."""
        return run_to_end(self.run(x, metric, generator=generator))


def check_plugin_outcome(attack: Attack, x: torch.Tensor, outcome: Any) -> None:
    """A plug-in attack returns an :class:`AttackOutcome` whose image is a finite batch
    shaped like its input.

    Raises:
        PluginOutputError: naming the attack's ``run`` (file and line).
    """
    where = f"{defined_at(type(attack).run)}: attack {attack.name!r} ({attack.plugin})"
    if not isinstance(outcome, AttackOutcome):
        raise PluginOutputError(f"{where} returned {type(outcome).__name__}; run must `return AttackOutcome(...)`")
    img = outcome.image
    if not isinstance(img, torch.Tensor) or tuple(img.shape) != tuple(x.shape):
        shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise PluginOutputError(f"{where} returned an image of {shape} for an input of {tuple(x.shape)}")
    if not bool(torch.isfinite(img.detach()).all()):
        raise PluginOutputError(f"{where} returned an image with pixels that are not finite (NaN or inf)")


def run_to_end(gen: AttackRun) -> AttackOutcome:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def rand_per_image(shape: torch.Size | tuple[int, ...], generator: Generators,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``torch.rand(shape)`` on the CPU; with one generator per image, each image's slice
    is drawn from its own, so it equals what that image draws when attacked alone."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(shape, generator=generator, dtype=dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for a batch of {shape[0]} images")
    return torch.cat([torch.rand((1, *shape[1:]), generator=g, dtype=dtype) for g in generator])


def perturbation_stats(x: torch.Tensor, x0: torch.Tensor,
                       out: torch.Tensor | None = None) -> tuple[float, float, float]:
    """Mean over the batch of L∞, L2 and PSNR (dB, data range 1) of ``x − x0``.

    ``out``: an optional scratch tensor shaped like x0 (saves allocating one per step:
    on the CPU a fresh image-sized buffer costs about as much as the arithmetic).
    """
    d = torch.sub(x.detach(), x0, out=out) if out is not None else x.detach() - x0
    d = d.flatten(1).abs_()
    linf = d.amax(dim=1)
    l2 = d.norm(dim=1)
    mse = l2.pow(2) / max(d.shape[1], 1)
    psnr = torch.where(mse > 0, 10 * torch.log10(1.0 / mse.clamp_min(1e-20)),
                       torch.full_like(mse, float("inf")))
    p = psnr.mean().item()
    return linf.mean().item(), l2.mean().item(), (p if math.isfinite(p) else float("inf"))


class IterateTracker:
    """Builds step records and remembers, per image, the best-scoring iterate.

    Feed it every iterate with the scores computed for it (usually by the same forward
    pass that produced the gradient, so tracking costs no extra metric call). For a batch
    of several images each record also carries every image's own record, computed on
    that image alone (the numbers it reports when attacked at batch size 1).
    """

    def __init__(self, metric: Metric, x0: torch.Tensor) -> None:
        self.metric = metric
        self.x0 = x0.detach()
        self.best = x0.detach().clone()
        self.best_goodness = torch.full((x0.shape[0],), -float("inf"), device=x0.device)
        self.best_iter = [0] * x0.shape[0]
        self.clean_scores: torch.Tensor | None = None
        self.steps: list[StepRecord] = []
        self._scratch = torch.empty_like(self.x0)
        self._last: tuple[int, torch.Tensor] | None = None

    def record(self, iteration: int, x: torch.Tensor, scores: torch.Tensor,
               loss: torch.Tensor | float | None = None, queries: int | None = None) -> StepRecord:
        scores = scores.detach().reshape(-1)
        if self.clean_scores is None and iteration == 0:
            self.clean_scores = scores.clone()
        if loss is None:
            loss_v = attack_loss(self.metric, scores).mean().item()
        else:
            loss_v = float(loss.detach().mean().item()) if isinstance(loss, torch.Tensor) else float(loss)
        goodness = self.metric.sign * scores
        better = goodness > self.best_goodness
        if bool(better.any()):
            self.best_goodness = torch.where(better, goodness, self.best_goodness)
            for i in torch.nonzero(better).flatten().tolist():
                self.best[i].copy_(x[i].detach())
                self.best_iter[i] = iteration
        linf, l2, psnr = perturbation_stats(x, self.x0, out=self._scratch)
        per_image = self._per_image(iteration, x, scores, loss, queries) if x.shape[0] > 1 else ()
        rec = StepRecord(iteration, float(scores.mean().item()), loss_v, linf, l2, psnr, queries, per_image)
        self.steps.append(rec)
        self._last = (iteration, scores)
        return rec

    def _per_image(self, iteration: int, x: torch.Tensor, scores: torch.Tensor,
                   loss: torch.Tensor | float | None, queries: int | None = None) -> tuple[StepRecord, ...]:
        out = []
        for i in range(x.shape[0]):
            s = scores[i:i + 1]
            if loss is None:
                loss_i = attack_loss(self.metric, s).mean().item()
            elif isinstance(loss, torch.Tensor) and loss.numel() == x.shape[0]:
                loss_i = float(loss.detach().reshape(-1)[i:i + 1].mean().item())
            else:
                loss_i = float(loss.detach().mean().item()) if isinstance(loss, torch.Tensor) else float(loss)
            linf, l2, psnr = perturbation_stats(x[i:i + 1], self.x0[i:i + 1])
            out.append(StepRecord(iteration, float(s.mean().item()), loss_i, linf, l2, psnr, queries))
        return tuple(out)

    def outcome(self, last: torch.Tensor, last_iteration: int, keep_best: bool) -> AttackOutcome:
        """The returned image: the best iterate per image, or ``last``. The last recorded
        scores travel with ``last`` when they were recorded for it (its final score)."""
        if keep_best:
            return AttackOutcome(self.best.clone(), "best", list(self.best_iter), list(self.steps))
        scores = None
        if self._last is not None and self._last[0] == last_iteration:
            scores = self._last[1].detach().clone()
        return AttackOutcome(last.detach().clone(), "last", [last_iteration] * last.shape[0],
                             list(self.steps), scores=scores)


def loss_and_grad(metric: Metric, x: torch.Tensor,
                  extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward+backward of the MSU loss at ``x``.

    Args:
        metric: the metric to attack.
        x: the iterate :math:`(B, 3, H, W)`.
        extra_loss: an optional per-image term ``f(x) -> (B,)`` added to the MSU loss.

    Returns:
        (scores :math:`(B,)`, per-image loss :math:`(B,)`, gradient of the summed loss w.r.t. x).
    """
    x = x.detach().requires_grad_(True)
    scores = metric.score(x, grad=True)
    loss = attack_loss(metric, scores)
    if extra_loss is not None:
        loss = loss + extra_loss(x)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return scores.detach(), loss.detach(), grad


def straight_through_clamp(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] in the forward pass, identity in the backward pass (as MSU's
    ``res.data.clamp_``), so saturated pixels keep receiving gradient."""
    return x + (x.clamp(0.0, 1.0) - x).detach()


ATTACKS: Registry[Attack] = Registry("attack")


def sweep(name: str, values: list[Any], fmt: str = "{}", **fixed: Any) -> dict[str, dict[str, Any]]:
    """Presets that sweep one parameter: label ``name=fmt(value)`` → overrides."""
    return {f"{name}={fmt.format(v)}": {name: v, **fixed} for v in values}
