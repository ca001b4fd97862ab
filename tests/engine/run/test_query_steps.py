"""Score-only attacks record queries in their steps: the step dict keeps its old keys for
every other attack, rows carry ``attack_queries``, the report's curve runs against
queries and the GUI's curve helper picks them."""
from __future__ import annotations

from engine.attacks.base import StepRecord
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.results.report.plots import score_curves
from engine.run.driver import run_experiment
from engine.store.db import ResultStore

OLD_KEYS = ["iteration", "score", "loss", "linf", "l2", "psnr"]


def test_step_dict_gains_queries_only_when_set():
    plain = StepRecord(3, 1.0, 0.5, 0.01, 0.2, 40.0)
    assert list(plain.to_dict()) == OLD_KEYS
    counted = StepRecord(3, 1.0, 0.5, 0.01, 0.2, 40.0, queries=120)
    assert counted.to_dict() == {**plain.to_dict(), "queries": 120}


def test_rows_record_queries_used_and_steps_keep_them(tmp_path, photo_folder):
    exp = Experiment(images=find_images(photo_folder)[:1], root=str(photo_folder), metrics=["brisque"],
                     attacks=["square:queries=12:eps=0.0157", "ifgsm:iters=2"], defences=[], seed=1,
                     device="cpu")
    store = ResultStore(tmp_path / "r.sqlite")
    list(run_experiment(exp, store))
    rows = {r["attack"]: r for r in store.rows(exp.id)}
    assert rows["square"]["attack_queries"] == 12
    # a gradient attack records none: the row counts the images the metric scored, re-counted
    # here by wrapping the metric's forward, on the same image alone
    assert rows["ifgsm"]["attack_queries"] == _forwarded_images(exp.images[0], "ifgsm:iters=2", rows["ifgsm"]["seed"])
    items = {it["item_id"]: it for it in store.items(exp.id)}
    steps = items[rows["square"]["item_id"]]["steps"]
    assert steps[0]["queries"] == 1 and steps[-1]["queries"] == 12
    assert "queries" not in items[rows["ifgsm"]["item_id"]]["steps"][0]


def _forwarded_images(path: str, attack: str, seed: int) -> int:
    import torch

    from engine.attacks import ATTACKS
    from engine.io.images import load_image
    from engine.metrics import create_metric
    from engine.spec.experiment import ComponentSpec

    spec = ComponentSpec.parse(attack)
    metric = create_metric("brisque", device="cpu")
    seen, forward = [0], metric.forward

    def counting(x):
        seen[0] += x.shape[0]
        return forward(x)

    metric.forward = counting
    ATTACKS.get(spec.name)(spec.params)(load_image(path).tensor, metric, generator=torch.Generator().manual_seed(seed))
    return seen[0]


def test_report_curve_runs_against_queries_for_score_only_attacks():
    def item(attack, steps):
        return {"metric": "brisque", "attack": attack, "status": "done", "steps": steps}

    bb = [{"iteration": i, "score": 20.0 - i, "queries": 1 + 10 * i} for i in range(4)]
    grad = [{"iteration": i, "score": 20.0 - i} for i in range(4)]
    fig = score_curves([item("square", bb), item("ifgsm", grad)])
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    sq = axes["square on brisque"]
    assert sq.get_xlabel() == "queries"
    assert list(sq.lines[0].get_xdata()) == [1, 11, 21, 31]
    assert axes["ifgsm on brisque"].get_xlabel() == "iteration"


def test_gui_curve_point_uses_queries_when_present():
    from gui.session_types import step_point

    assert step_point({"iteration": 2, "score": 5.0, "queries": 40}) == (40.0, 5.0)
    assert step_point(StepRecord(2, 5.0, 0.0, 0.0, 0.0, 0.0)) == (2.0, 5.0)
    assert step_point(StepRecord(2, 5.0, 0.0, 0.0, 0.0, 0.0, queries=7)) == (7.0, 5.0)
