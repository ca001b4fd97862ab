"""CSV export: columns and values equal the store; the summary's means are right."""
import csv
import math

import pytest

from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.evaluation.tables import SUMMARY_COLUMNS, summarise
from engine.results.export import RAW_COLUMNS, export_csv
from engine.run.driver import run_experiment
from engine.store.db import ResultStore
from engine.evaluation.tables import EIGHT_BIT_SCORES

MSU_COLUMNS = ["image_name", "clear", "attacked", "defended-clear", "defended-attacked", "mos"] + [
    f"{k}_{p}" for p in ("clear_defended-clear", "clear_attacked", "clear_defended-attacked",
                         "attacked_defended-attacked", "defended-clear_defended-attacked")
    for k in ("ssim", "mse", "psnr", "l_inf", "mae")] + ["attack", "attack_preset", "defence_preset"]


def test_csv_matches_store(tmp_path, photo_folder):
    (photo_folder / "broken.png").write_bytes(b"\x89PNG\r\n")
    exp = Experiment(images=find_images(photo_folder), root=str(photo_folder), metrics=["niqe"],
                     attacks=["ifgsm:iters=2", "fgsm"], defences=["jpeg"], device="cpu")
    store = ResultStore(tmp_path / "r.sqlite")
    list(run_experiment(exp, store))
    raw, summary = export_csv(store, tmp_path / "out")
    with open(raw, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == RAW_COLUMNS
        assert reader.fieldnames[: len(MSU_COLUMNS)] == MSU_COLUMNS
        lines = list(reader)
    rows = store.rows(exp.id)
    good = [l for l in lines if not l["error"]]
    errs = [l for l in lines if l["error"]]
    assert len(good) == len(rows) == 3 * 2 * 2 and len(errs) == 2
    assert all(e["image_name"] == "broken.png" and "[load]" in e["error"] for e in errs)
    for line, row in zip(good, rows):
        for c in ("clear", "defended-attacked", "psnr_clear_attacked", "robust_abs_gain"):
            assert float(line[c]) == row[c]  # repr() round-trips exactly
        assert line["image_name"] == row["image_name"] and line["attack_preset"] == row["attack_preset"]

    with open(summary, newline="") as f:
        srows = list(csv.DictReader(f))
    assert list(srows[0]) == SUMMARY_COLUMNS
    def value(attack, defence, score):
        (r,) = [s for s in srows if s["attack"] == attack and s["defence"] == defence and s["score"] == score]
        return float(r["value"])
    for attack in ("ifgsm", "fgsm"):
        sel = [r["robust_abs_gain"] for r in rows if r["attack"] == attack and r["defence"] == "jpeg"]
        assert value(attack, "jpeg", "robust_abs_gain") == pytest.approx(sum(sel) / len(sel))
    tot = [r["robust_abs_gain"] for r in rows if r["defence"] == "jpeg"]
    assert value("total", "jpeg", "robust_abs_gain") == pytest.approx(sum(tot) / len(tot))
    assert value("total", "none", "mean_time") > 0
    for r in srows:  # 3 images: every mean has a bootstrap interval around it
        few = r["score"] in EIGHT_BIT_SCORES and int(r["count"]) < 2  # only the images the attack gained on
        if r["value"] and r["score"] not in ("srocc_clear_defended-clear",) and not few:
            assert r["ci_method"] == "bootstrap" and float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"])
    with open(tmp_path / "out" / "paired.csv", newline="") as f:
        paired = list(csv.DictReader(f))
    (p,) = [r for r in paired if r["attack"] == "fgsm" and {r["defence_a"], r["defence_b"]} == {"none", "jpeg"}]
    by = {(r["image_name"], r["defence"]): r["robust_abs_gain"] for r in rows if r["attack"] == "fgsm"}
    diffs = [by[(i, p["defence_a"])] - by[(i, p["defence_b"])] for i in {i for i, _ in by}]
    assert float(p["mean_diff"]) == pytest.approx(sum(diffs) / len(diffs)) and int(p["n"]) == 3
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_summary_skips_errors_and_non_finite():
    rows = [dict(metric="m", attack="a", attack_preset="p", defence="d", defence_preset="q",
                 robust_abs_gain=v, error=e, attack_time=1.0, defence_time=0.5)
            for v, e in ((0.2, None), (0.4, None), (float("nan"), None), (9.0, "boom"))]
    s = summarise(rows)
    (g,) = [r for r in s if r["attack"] == "a" and r["score"] == "robust_abs_gain"]
    assert g["value"] == pytest.approx(0.3) and g["count"] == 2
    (t,) = [r for r in s if r["attack"] == "a" and r["score"] == "mean_time"]
    assert t["value"] == pytest.approx(1.5) and t["count"] == 3
    assert all(not (isinstance(r["value"], float) and math.isnan(r["value"])) for r in s if r["value"] is not None)
