"""Certified (smoothing) defences through the one run path: rows, same draws, summary, report."""
from __future__ import annotations

import csv

import pytest

from engine.defences import DEFENCES
from engine.defences._smoothing import SmoothingDefence
from engine.evaluation.certified import CERTIFIED_COLUMNS
from engine.core.seeds import derive_seed
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.results.export import export_csv
from engine.io.images import load_image
from engine.run.driver import run_experiment
from engine.store.db import ResultStore
from engine.run.identity import content_items

SMOOTHING = ["randomized-smoothing:n=8:batch=8:bound=bernstein", "median-smoothing:n=8:batch=8:radius=0.1"]


@pytest.fixture(scope="module")
def certified_run(tmp_path_factory):
    from tests.conftest import photo
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for n in ("astronaut", "coffee"):
        Image.fromarray(photo(n, (72, 72))).save(folder / f"{n}.png")
    exp = Experiment(images=find_images(folder), root=str(folder), metrics=["brisque"],
                     attacks=["ifgsm:iters=2"], defences=[*SMOOTHING, "jpeg"], seed=3, device="cpu")
    store = ResultStore(tmp_path_factory.mktemp("store") / "r.sqlite")
    calls: list[tuple[str, int]] = []
    original = SmoothingDefence.certify

    def spy(self, metric, x, seed):
        calls.append((self.name, seed))
        return original(self, metric, x, seed)

    mp = pytest.MonkeyPatch()
    mp.setattr(SmoothingDefence, "certify", spy)
    try:
        list(run_experiment(exp, store))
    finally:
        mp.undo()
    return exp, store, calls


def test_rows_carry_the_certificate_from_the_same_draws(certified_run, brisque):
    exp, store, calls = certified_run
    rows = store.rows(exp.id)
    smoothed = [r for r in rows if r["defence"] in ("randomized-smoothing", "median-smoothing")]
    assert len(smoothed) == 4 and all(r["error"] is None for r in rows)
    items = {it.id: it for it in content_items(exp)}
    specs = {s.name: s for s in exp.defences}
    assert len(calls) == 2 * len(smoothed)
    for r in smoothed:
        seed = derive_seed(items[r["item_id"]].seed, specs[r["defence"]].key)
        assert calls.count((r["defence"], seed)) == 2  # clean and attacked: the same seed, so the same draws
        x = load_image(items[r["item_id"]].image).tensor
        d = DEFENCES.get(r["defence"])(specs[r["defence"]].params)
        assert r["defended-clear"] == pytest.approx(float(d.certify(brisque, x, seed).score[0]), abs=1e-4)
        assert r["defended-clear_certified_low"] <= r["defended-clear"] <= r["defended-clear_certified_high"]
        # an L∞ attack (1/255 per step) is outside an L2 radius of 0.1–0.25 on 72² pixels
        assert r["perturbation_l2"] > r["certified_radius"] and not r["certified_applies"]
        assert r["certified_holds"] == (r["defended-clear_certified_low"] <= r["defended-attacked"]
                                        <= r["defended-clear_certified_high"])
        assert r["certified_holds"] or "outside the certified radius" in r["certified_note"]
    others = [r for r in rows if r["defence"] in ("none", "jpeg")]
    assert others and all("certified_holds" not in r for r in others)


def test_summary_and_report_show_width_and_share(certified_run, tmp_path):
    exp, store, _ = certified_run
    raw, summary = export_csv(store, tmp_path / "csv", exp.id)
    with open(raw, newline="") as f:
        lines = list(csv.DictReader(f))
    assert set(CERTIFIED_COLUMNS) <= set(lines[0])
    with open(summary, newline="") as f:
        srows = [s for s in csv.DictReader(f) if s["attack"] == "total"]
    rows = store.rows(exp.id)
    for name in ("randomized-smoothing", "median-smoothing"):
        mine = [r for r in rows if r["defence"] == name]
        (width,) = [s for s in srows if s["defence"] == name and s["score"] == "certified_width"]
        (share,) = [s for s in srows if s["defence"] == name and s["score"] == "certified_holds"]
        assert float(width["value"]) == pytest.approx(sum(r["certified_width"] for r in mine) / len(mine))
        assert float(share["value"]) == pytest.approx(sum(r["certified_holds"] for r in mine) / len(mine))
    assert not [s for s in srows if s["defence"] == "jpeg" and s["score"].startswith("certified")]

    from engine.results.report.build import build_report

    page = build_report(store.path, tmp_path / "report", exp.id).read_text()
    assert "certificate holds" in page and "certified width" in page
