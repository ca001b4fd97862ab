"""The plan preview lists exactly what the CLI would refuse (engine.run.prepare.check)."""
from __future__ import annotations

from PIL import Image

from engine.run.prepare import check
from engine.spec.experiment import Experiment
from tests.conftest import photo


def test_the_plan_preview_lists_the_same_problems(tmp_path):
    from gui.plan import make_plan

    image = tmp_path / "a.png"
    Image.fromarray(photo("astronaut", (64, 64))).save(image)
    exp = Experiment(images=[str(image)], metrics=["niqe", "nqie"], device="cpu", defences=["jpeg"],
                     attacks=["fgsm", f"uap:perturbation={tmp_path / 'no.pt'}"])
    plan = make_plan(exp, tmp_path / "out" / "results.sqlite", {})
    assert plan.problems == check(exp)
    assert [line for line in plan.lines() if line.startswith("cannot run")] == [p.line for p in check(exp)]
