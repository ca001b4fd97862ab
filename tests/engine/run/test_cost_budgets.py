"""Cost budgets (IOI's equal-speed comparison): ``time=1s`` and ``queries=1000`` parse,
calibration picks the iteration count whose measured time / queries per image stay within
the budget, and rows carry the budget and what each image spent."""
from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image

from engine.metrics.counting import QueryCounter
from engine.run.calibration import CalibrationError, calibrate, cost_spec, search_cost
from engine.spec.budgets import BudgetError, budget_columns, budget_text_title, parse_budget
from engine.spec.experiment import ComponentSpec
from tests.conftest import photo


def test_cost_budgets_parse_and_read_in_words():
    assert (parse_budget("time=1s").kind, parse_budget("time=1s").target) == ("time", 1.0)
    assert parse_budget("time=500ms").target == pytest.approx(0.5)
    assert parse_budget("time=0.25").target == pytest.approx(0.25)
    assert parse_budget("time=2min").target == pytest.approx(120.0)
    q = parse_budget("queries=1000")
    assert (q.kind, q.target, q.cost) == ("queries", 1000.0, True) and not parse_budget("linf-4").cost
    assert q.meets(1000) and not q.meets(1001) and q.close(960) and not q.close(900)
    assert parse_budget("time=1s").title == "at 1 s per image"
    assert parse_budget("time=500ms").title == "at 500 ms per image"
    assert q.title == "at 1000 queries per image"
    assert budget_text_title("linf-4") == "at L∞ ≤ 4/255" and budget_text_title("psnr=40") == "at PSNR ≥ 40 dB"
    assert budget_text_title(None) == ""
    for bad in ("queries=10.5", "time=abc", "time=-1s", "queries=0", "time"):
        with pytest.raises(BudgetError, match="budget"):
            parse_budget(bad)


def test_rows_carry_a_cost_budget_and_what_they_spent():
    assert budget_columns("queries=100", {"attack_queries": 81}) == {
        "budget": "queries=100", "budget_reached": 81, "budget_met": True}
    assert budget_columns("time=1s", {"attack_time": 1.4})["budget_met"] is False


def _affine(per: float, fixed: float, kind: str):
    return lambda n: {"linf": 0.0, "psnr": 0.0, "ssim": 1.0, kind: fixed + per * n}


def test_cost_search_finds_the_largest_count_within_the_budget():
    b = parse_budget("queries=1000")
    f = _affine(2.0, 3.0, "queries")  # 3 + 2n queries: n = 498 spends 999
    n, trace = search_cost(f, b, 10, 1, 100_000)
    assert b.meets(f(n)["queries"]) and b.close(f(n)["queries"]) and len(trace) <= 4
    # a budget below one iteration's cost: the smallest count, not met
    n, _ = search_cost(_affine(2.0, 3.0, "queries"), parse_budget("queries=4"), 10, 1, 100)
    assert n == 1
    # a tolerance tighter than one iteration: the bracket closes on the largest count within
    b = parse_budget("queries=100")
    coarse = _affine(7.0, 0.0, "queries")  # 98 ≤ 100 < 105
    n, _ = search_cost(coarse, b, 1, 1, 1000)
    assert n == 14
    # the parameter's upper bound caps the count
    n, _ = search_cost(_affine(1.0, 0.0, "time"), parse_budget("time=1000s"), 10, 1, 50)
    assert n == 50


def test_only_attacks_with_an_iteration_or_query_count_take_a_cost_budget():
    from engine.attacks import ATTACKS

    assert cost_spec(ATTACKS.get("ifgsm")).name == "iters"
    assert cost_spec(ATTACKS.get("square")).name == "queries"
    with pytest.raises(CalibrationError, match="no iteration or query count"):
        cost_spec(ATTACKS.get("fgsm"))


@pytest.fixture()
def two_photos(tmp_path):
    paths = []
    for name in ("astronaut", "coffee"):
        Image.fromarray(photo(name, (64, 64))).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    return paths


def _queries(attack: str, path: str, value: int) -> int:
    """The images brisque scores while ``attack`` runs with its count set to ``value``,
    counted by wrapping the metric's forward (independently of the calibration)."""
    from engine.attacks import ATTACKS
    from engine.io.images import load_image
    from engine.metrics import create_metric

    cls = ATTACKS.get(attack)
    metric = create_metric("brisque", device="cpu")
    seen, forward = [0], metric.forward

    def counting(x):
        seen[0] += x.shape[0]
        return forward(x)

    metric.forward = counting
    outcome = cls({cost_spec(cls).name: value})(load_image(path).tensor, metric, generator=torch.Generator())
    recorded = outcome.steps[-1].queries if outcome.steps else None
    return recorded if recorded is not None else seen[0]


def test_calibration_to_a_query_budget_on_real_photos(two_photos):
    b = parse_budget("queries=12")
    entry = calibrate(two_photos, ComponentSpec.parse("brisque"), ComponentSpec.parse("ifgsm"), b, n_images=1)
    assert entry["param"] == "iters" and entry["met"]
    n = entry["value"]
    spent = _queries("ifgsm", two_photos[0], n)
    assert entry["achieved"]["queries"] == spent and spent <= 12
    # close below the budget (tolerance: one query), and two iterations more exceed it
    assert spent >= 12 - b.tolerance and _queries("ifgsm", two_photos[0], n + 2) > 12


def test_calibration_to_a_time_budget_measures_time(two_photos):
    """The budget is 6× one iteration's time measured here and now (the machine is shared
    and its speed varies), so the search must find several iterations within it."""
    import time

    from engine.attacks import ATTACKS
    from engine.io.images import load_image
    from engine.metrics import create_metric

    metric, x = create_metric("brisque", device="cpu"), load_image(two_photos[0]).tensor
    ATTACKS.get("ifgsm")(iters=1)(x, metric)  # warm-up, as the calibration does
    t0 = time.perf_counter()
    ATTACKS.get("ifgsm")(iters=1)(x, metric)
    one = time.perf_counter() - t0
    b = parse_budget(f"time={6 * one:.4f}")
    entry = calibrate(two_photos, ComponentSpec.parse("brisque"), ComponentSpec.parse("ifgsm"), b, n_images=1)
    within = [t for t in entry["trace"] if b.meets(t["time"])]
    assert entry["param"] == "iters" and entry["met"] and entry["achieved"]["time"] <= b.target
    assert entry["value"] == max(t["value"] for t in within) >= 2
    # more iterations took longer (the search measured time, not a constant)
    slow, fast = max(entry["trace"], key=lambda t: t["value"]), min(entry["trace"], key=lambda t: t["value"])
    if slow["value"] >= 3 * fast["value"]:
        assert slow["time"] > fast["time"]


def test_run_with_a_query_budget_rows_carry_it(tmp_path, two_photos, capsys):
    from engine.cli import main

    folder = str(tmp_path)
    argv = ["run", folder, "--metric", "brisque", "--attack", "ifgsm", "--defence", "none",
            "--budget", "queries=8", "--out", str(tmp_path / "out"), "-q", "--device", "cpu"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "calibrating ifgsm on brisque to queries=8" in err and "queries per image" in err
    rows = list(csv.DictReader(open(tmp_path / "out" / "raw.csv", newline="")))
    assert len(rows) == 2 and {r["budget"] for r in rows} == {"queries=8"}
    iters = int(rows[0]["attack_iterations"])
    for r in rows:
        spent = _queries("ifgsm", str(tmp_path / r["image_name"]), iters)
        assert float(r["attack_queries"]) == spent <= 8
        assert r["budget_reached"] == r["attack_queries"] and r["budget_met"] == "True"
    summary = list(csv.DictReader(open(tmp_path / "out" / "summary.csv", newline="")))
    assert {s["budget"] for s in summary} == {"queries=8"}


def test_query_counter_counts_and_restores(brisque):
    with QueryCounter(brisque) as qc:
        brisque.score(torch.rand(2, 3, 32, 32))
        brisque(torch.rand(1, 3, 32, 32))
    assert qc.images == 3 and "forward" not in vars(brisque)


def test_the_report_says_the_budget_in_words():
    from engine.results.report.data import ReportData
    from engine.results.report.html import glance

    def budget_line(label):
        spec = {"metrics": ["niqe"], "attacks": ["ifgsm"], "defences": [], "images": ["a.png"], "seed": 0,
                "budget": label}
        return dict(glance(ReportData("x", spec, {}, [], [], [], 1, 1, 0)))["budget"]

    assert budget_line("time=1s") == "time=1s (at 1 s per image)"
    assert budget_line("queries=1000") == "queries=1000 (at 1000 queries per image)"
    assert budget_line("linf-4") == "linf-4 (at L∞ ≤ 4/255)"
