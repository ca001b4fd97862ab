"""The attacked image as delivered: its score on the 8-bit grid and the share of the gain
that survives (issue 23 §4)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from engine.evaluation.eight_bit import eight_bit_columns
from engine.evaluation.protocol import to_8bit_grid
from engine.evaluation.tables import summarise
from engine.io.images import load_image, save_png
from tests.conftest import photo


def test_the_8bit_grid_is_what_a_saved_png_keeps(tmp_path):
    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1
    save_png(x, tmp_path / "x.png")
    assert torch.equal(to_8bit_grid(x), load_image(tmp_path / "x.png", min_side=1).tensor)


def test_the_columns():
    # higher is better: 1 → 2 float, 1.5 on the grid: half the gain kept
    assert eight_bit_columns(1.0, 2.0, 1.5, lower_better=False) == {
        "attacked_8bit": 1.5, "gain_kept_8bit": 0.5, "gain_lost_8bit": False}
    # lower is better (NIQE): 5 → 4 float, 5.2 on the grid: the gain is gone
    cols = eight_bit_columns(5.0, 4.0, 5.2, lower_better=True)
    assert cols["gain_kept_8bit"] == pytest.approx(-0.2) and cols["gain_lost_8bit"] is True
    # no gain: nothing to keep or lose
    cols = eight_bit_columns(5.0, 5.5, 5.5, lower_better=True)
    assert math.isnan(cols["gain_kept_8bit"]) and cols["gain_lost_8bit"] is None


def test_rows_record_the_8bit_score_and_the_summary_how_often_the_gain_is_lost(tmp_path):
    from engine.metrics import create_metric
    from engine.run.driver import run_experiment
    from engine.spec.experiment import Experiment
    from engine.store.db import ResultStore

    folder = tmp_path / "photos"
    folder.mkdir()
    for n in ("astronaut", "coffee"):
        Image.fromarray(photo(n, (96, 96))).save(folder / f"{n}.png")
    # one step of 0.5/255: the float gain is real, most of it is below the 8-bit grid
    exp = Experiment(images=sorted(str(p) for p in folder.iterdir()), root=str(folder), metrics=["niqe"],
                     attacks=["ifgsm:iters=1:eps=0.5/255:alpha=0.5/255"], defences=["jpeg"], device="cpu",
                     save_images=True)
    store = ResultStore(tmp_path / "r.sqlite")
    list(run_experiment(exp, store))
    rows = store.rows(exp.id)
    niqe = create_metric("niqe")
    for r in rows:
        assert r["error"] is None
        saved = load_image(store.image_path(exp.id, r["item_id"], "attacked")).tensor
        assert r["attacked_8bit"] == pytest.approx(float(niqe.score(saved)[0]), rel=1e-6)  # one more forward
        gain = r["attacked"] - r["clear"]
        if r["attack_gained"]:
            assert r["gain_kept_8bit"] == pytest.approx((r["attacked_8bit"] - r["clear"]) / gain, rel=1e-9)
            assert r["gain_lost_8bit"] == (r["attacked_8bit"] >= r["clear"])  # NIQE: lower is better
    lost = [s for s in summarise(rows) if s["score"] == "gain_lost_8bit" and s["defence"] == "none"]
    gained = [r for r in rows if r["defence"] == "none" and r["attack_gained"]]
    assert lost and lost[0]["value"] == pytest.approx(np.mean([r["gain_lost_8bit"] for r in gained]))
