"""Budgets: parsing, the strength search, and calibration on real photos."""
import json

import pytest

from engine.spec.budgets import BudgetError, budget_columns, parse_budget
from engine.run.calibration import (
    calibrate,
    calibrated_spec,
    find_preset,
    save_preset,
    search,
)
from engine.spec.experiment import ComponentSpec, Experiment


def test_budget_names_and_expressions():
    b = parse_budget("linf-4")
    assert (b.kind, b.target, b.label) == ("linf", 4 / 255, "linf-4")
    assert parse_budget("linf=8/255").target == parse_budget("linf-8").target
    assert (parse_budget("psnr=40").kind, parse_budget("ssim=0.98").target) == ("psnr", 0.98)
    assert parse_budget("psnr=40").meets(41) and not parse_budget("psnr=40").meets(39)
    for bad in ("linf", "l2=3", "psnr=abc", "ssim=2", "linf-3"):
        with pytest.raises(BudgetError, match="budget"):
            parse_budget(bad)


def test_rows_record_budget_and_reached():
    cols = budget_columns("linf-4", {"l_inf_clear_attacked": 3 / 255})
    assert cols == {"budget": "linf-4", "budget_reached": 3 / 255, "budget_met": True}
    assert budget_columns("psnr=40", {"psnr_clear_attacked": 38.0})["budget_met"] is False
    assert budget_columns(None, {}) == {}


def test_search_finds_the_largest_strength_within_the_budget():
    b = parse_budget("psnr=40")
    f = lambda v: {"linf": v, "psnr": 60 - 100 * v, "ssim": 1 - v}
    v, trace = search(f, b, 0.5, 0.0, 1.0, integer=False)
    assert b.close(f(v)["psnr"]) and len(trace) < 24
    capped = lambda v: {"linf": min(v, 3 / 255), "psnr": 0, "ssim": 0}
    v, _ = search(capped, parse_budget("linf-4"), 1 / 255, 0.0, 1.0, integer=False)
    assert v == pytest.approx(4 / 255) and capped(v)["linf"] == pytest.approx(3 / 255)
    it, _ = search(lambda n: {"linf": n / 255, "psnr": 0, "ssim": 0}, parse_budget("linf-8"), 10, 1, 100, integer=True)
    assert it == 8


@pytest.mark.parametrize("budget", ["psnr=40", "linf-4"])
def test_calibration_meets_its_budget_on_real_photos(tmp_path, budget):
    from PIL import Image

    from tests.conftest import photo

    images = []
    for name in ("astronaut", "coffee"):
        Image.fromarray(photo(name, (96, 96))).save(tmp_path / f"{name}.png")
        images.append(str(tmp_path / f"{name}.png"))
    metric, attack = ComponentSpec.parse("niqe"), ComponentSpec.parse("fgsm")
    b = parse_budget(budget)
    entry = calibrate(images, metric, attack, b, n_images=2 if b.kind == "psnr" else 1)
    assert entry["param"] == "eps" and entry["met"] and entry["close"]
    reached = entry["achieved"][b.kind]
    assert b.meets(reached) and abs(reached - b.target) <= b.tolerance  # 0.25 dB / 0.25/255
    path = save_preset(tmp_path / "b.json", entry)
    assert find_preset(path, metric, attack, b)["value"] == entry["value"]
    assert json.loads(path.read_text())["version"] == 1
    assert calibrated_spec(attack, entry).params == {"eps": entry["value"]}


def test_experiment_id_unchanged_without_budget_or_study():
    base = {"images": ["a.png"], "metrics": ["niqe"], "attacks": ["fgsm"], "seed": 3}
    old = Experiment.from_dict(base)
    assert Experiment.from_dict({**base, "budget": None, "study": None}).id == old.id
    assert Experiment.from_dict({**base, "budget": "linf-4"}).id != old.id


def test_run_with_a_budget_calibrates_once_and_rows_record_it(tmp_path, capsys):
    import csv

    from PIL import Image

    from engine.cli import main
    from tests.conftest import photo

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "coffee"):
        Image.fromarray(photo(name, (96, 96))).save(folder / f"{name}.png")
    argv = ["run", str(folder), "--metric", "niqe", "--attack", "fgsm", "--defence", "none", "--budget", "linf-2",
            "--out", str(tmp_path / "out"), "-q"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "calibrating fgsm on niqe to linf-2" in err and "meets it" in err
    rows = list(csv.DictReader(open(tmp_path / "out" / "raw.csv", newline="")))
    assert {r["budget"] for r in rows} == {"linf-2"} and all(r["budget_met"] == "True" for r in rows)
    assert all(abs(float(r["budget_reached"]) - 2 / 255) <= 0.25 / 255 for r in rows)
    assert all(r["budget_reached"] == r["l_inf_clear_attacked"] for r in rows)
    summary = list(csv.DictReader(open(tmp_path / "out" / "summary.csv", newline="")))
    assert {s["budget"] for s in summary} == {"linf-2"}
    assert main(argv) == 0  # the stored preset is used: same experiment, nothing recomputed
    err = capsys.readouterr().err
    assert "calibrating" not in err and "2 reused from the store" in err
    assert main([*argv[:-5], "--budget", "l2=3", "--out", str(tmp_path / "o2")]) == 2
    assert "not understood" in capsys.readouterr().err


def test_every_attack_declares_an_existing_strength_parameter():
    from engine.attacks import ATTACKS
    from engine.run.calibration import strength_spec

    for name in ATTACKS.names():
        spec = strength_spec(ATTACKS.get(name))  # raises CalibrationError when it names no parameter
        assert spec.type in (int, float), (name, spec.name)
