"""engine.api is the whole plug-in surface: a component written against it alone registers
and runs like a built-in."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import engine.api as api


def test_the_surface_is_what_the_docstring_promises():
    assert sorted(api.__all__) == sorted(
        ["ATTACKS", "Attack", "AttackOutcome", "Availability", "DEFENCES", "Defence", "IterateTracker",
         "METRICS", "Metric", "ParamError", "StepRecord", "attack_loss", "check_image_batch", "derive_seed",
         "loss_and_grad", "param", "rand_per_image"])
    for name in api.__all__:
        assert getattr(api, name) is not None


def test_a_defence_written_against_the_api_registers_and_runs():
    @dataclass
    class LevelsParams:
        levels: int = api.param(4, min=2, max=256, help="grey levels per channel")

    @api.DEFENCES.register("levels-test")
    class Levels(api.Defence):
        Params = LevelsParams

        def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
            n = self.params.levels - 1
            return torch.round(x * n) / n

    try:
        from engine.run.prepare import check
        from engine.spec.experiment import Experiment

        cls = api.DEFENCES.get("levels-test")
        out = cls(levels=3)(torch.linspace(0, 1, 3 * 4 * 4).reshape(1, 3, 4, 4))
        assert set(torch.unique(out).tolist()) <= {0.0, 0.5, 1.0}
        assert cls.availability().state == "ready"
        with pytest.raises(api.ParamError):
            cls(levels=1)
        exp = Experiment(images=["a.png"], metrics=["niqe"], attacks=["fgsm"], defences=["levels-test:levels=500"])
        assert [p.kind for p in check(exp, metric_info={})] == ["defence"]
    finally:
        api.DEFENCES.unregister("levels-test")
