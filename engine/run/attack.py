"""The attack stage of an item: build the attacked target, run the steps, score x_a.

:class:`Attacked` is what the stage hands on, also when a stored attack is replayed
(:mod:`engine.run.replay`): then its per-image columns and steps are the stored ones.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Generator

import torch

from engine.core.events import AttackDone, AttackStep, Event
from engine.core.seeds import derive_seed
from engine.evaluation.protocol import attacked_for_protocol, to_8bit_grid
from engine.metrics.counting import QueryCounter, queries_of
from engine.run.runtime import Runtime
from engine.run.scoring import failure_text, finite_each, metric_scores, per_image, sync
from engine.run.units import Cancelled, CancelToken, ItemError
from engine.spec.experiment import Experiment, WorkItem
from engine.spec.replay import AttackReplay


@dataclass
class Attacked:
    """What the attack stage hands on: the attacked batch and its per-image numbers."""

    x_adv: torch.Tensor
    scores: list[float]       # M(x_a) per image
    seconds: float            # attack time per image
    outcome: Any              # the attack's AttackOutcome (steps, selection, mode)
    used: list[int]           # per image, which iterate was returned (-1: unknown)
    queries: float | None = None  # metric evaluations per image (recorded by a score-only attack, else counted)
    scores_8bit: list[float] | None = None  # M(x_a rounded to the 8-bit grid) per image
    replayed: list[AttackReplay] | None = None  # per image, the stored attack replayed (no outcome then)

    def columns(self, i: int) -> dict[str, Any]:
        """Image ``i``'s columns that the attack alone determines
        (:data:`engine.spec.replay.ATTACK_COLUMNS`)."""
        if self.replayed is not None:
            return dict(self.replayed[i].columns)
        outcome = self.outcome
        return {"attack_time": self.seconds, "attack_iterations": max(0, len(outcome.steps) - 1),
                "iteration_used": self.used[i], "attack_queries": self.queries,
                "attack_selection": outcome.selection, "attack_mode": outcome.mode}

    def step_records(self, i: int) -> list[dict[str, Any]]:
        """Image ``i``'s attack steps as stored records."""
        if self.replayed is not None:
            return [dict(s) for s in self.replayed[i].steps]
        return [s.image(i).to_dict() for s in self.outcome.steps]

    def done_event(self, item_id: str, i: int) -> AttackDone:
        """Image ``i``'s :class:`~engine.core.events.AttackDone`."""
        c = self.columns(i)
        return AttackDone(item_id, self.scores[i], c["attack_time"], c["attack_selection"], self.used[i],
                          c["attack_mode"])


def attack_target(items: list[WorkItem], metric, exp: Experiment, runtime: Runtime) -> tuple[Any, Any, str]:
    """The attack and what it attacks: the metric, or (adaptive) the metric behind the
    item's target defence with its EOT seeds; ``(attack, target, mode)``."""
    first = items[0]
    try:
        attack = runtime.attack(first.attack)
        target, mode = metric, "direct"
        if first.target_defence is not None and first.target_defence.name != "none":
            from engine.attacks.adaptive import target_metric

            eot_seeds = per_image([derive_seed(it.seed, "eot") for it in items])
            target, mode = target_metric(metric, runtime.defence(first.target_defence),
                                         max(1, exp.eot_draws), eot_seeds)
    except Exception as exc:  # noqa: BLE001
        raise ItemError("attack", f"cannot set up attack {first.attack.label}: {failure_text(exc)}") from exc
    return attack, target, mode


def attack_steps(run: Generator, first: WorkItem, clean0: float,
                 cancel: CancelToken | None) -> Generator[Event, None, Any]:
    """Drive the attack's generator; stream the first image's steps; its outcome.

    Raises:
        Cancelled: ``cancel`` was set (checked between steps).
        ItemError: the attack failed.
    """
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                run.close()
                raise Cancelled()
            try:
                step = next(run)
            except StopIteration as stop:
                return stop.value
            yield AttackStep(first.id, first.attack.label, step.image(0), clean0)
    except (Cancelled, ItemError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise ItemError("attack", f"{first.attack.label} failed: {failure_text(exc)}") from exc


def _check_plugin(attack, x: torch.Tensor, outcome: Any) -> None:
    from engine.attacks.base import check_plugin_outcome

    try:
        check_plugin_outcome(attack, x, outcome)
    except Exception as exc:  # noqa: BLE001 - the plug-in's message is this item's error
        raise ItemError("attack", str(exc)) from exc


def run_attack(items: list[WorkItem], x: torch.Tensor, metric, clean: list[float], exp: Experiment,
               runtime: Runtime, cancel: CancelToken | None) -> Generator[Event, None, Attacked]:
    """Attack the batch ``x`` (each image with its item's seeded generator) and score x_a.

    The attacked score is the attack's own when it scored the returned image directly;
    an adaptive attack scored M∘D, so the row's M(x_a) is computed here.
    """
    n = len(items)
    attack, target, mode = attack_target(items, metric, exp, runtime)
    gens = [torch.Generator().manual_seed(it.seed) for it in items]
    sync(runtime.device)
    t0 = time.perf_counter()
    with QueryCounter(metric) as counter:  # the bare metric: an adaptive target's calls reach it too
        run = attack.run(x, target, generator=gens[0] if n == 1 else gens)
        outcome = yield from attack_steps(run, items[0], clean[0], cancel)
    if attack.plugin is not None:
        _check_plugin(attack, x, outcome)
    sync(runtime.device)
    seconds = (time.perf_counter() - t0) / n
    x_adv, requantised = attacked_for_protocol(outcome.image.detach(), exp.protocol)
    if outcome.scores is not None and mode == "direct" and not requantised:  # the attack scored x_adv
        scores = finite_each(outcome.scores, f"{metric.name} score of the attacked image", "attack")
    else:  # adaptive: the attack scored M∘D, the row needs M(x_adv)
        scores = metric_scores(metric, x_adv, "attacked image", "attack")
    if mode != "direct":
        outcome.mode = mode
    used = [int(u) for u in outcome.iteration_used] if outcome.iteration_used else [-1] * n
    # the score as delivered (an 8-bit file): one more forward, unless x_adv is on the grid already (msu)
    scores_8bit = scores if exp.protocol == "msu" else metric_scores(
        metric, to_8bit_grid(x_adv), "attacked image on the 8-bit grid", "attack")
    return Attacked(x_adv, scores, seconds, outcome, used, queries_of(outcome, counter.images / n), scores_8bit)
