"""The evaluation protocol option: ``lab`` (the attack's float image) vs ``msu`` (MSU's
defence_evaluate.py: the attacked image rounded to 8 bits before it is scored and
defended; defended images scored at the defence's output size)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.evaluation.protocol import attacked_for_protocol
from engine.spec.protocols import check_protocol
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.run.driver import run_experiment
from engine.store.db import ResultStore
from tests.engine.defences import msu_defence_reference as ref

# steps of 0.38/255: the attacked image lies off the 8-bit grid
OFF_GRID_ATTACK = "ifgsm:iters=1:alpha=0.0015"


def _png(path) -> torch.Tensor:
    arr = np.asarray(Image.open(path).convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255)[None]


def test_msu_protocol_rounds_to_the_8bit_grid_and_lab_keeps_the_floats():
    x = torch.tensor([[[[0.1 / 255, 1.6 / 255], [254.4 / 255, 1.2]]]]).expand(1, 3, 2, 2)
    same, changed = attacked_for_protocol(x, "lab")
    assert same is x and not changed
    q, changed = attacked_for_protocol(x, "msu")
    assert changed and torch.equal(q * 255, torch.tensor([[0.0, 2.0], [254.0, 255.0]]).expand(1, 3, 2, 2))
    on_grid = torch.arange(12).float().view(1, 3, 2, 2) / 255
    assert not attacked_for_protocol(on_grid, "msu")[1]
    with pytest.raises(ValueError, match="known: lab, msu"):
        check_protocol("benchmark")


def test_protocol_is_part_of_the_identity_and_lab_keeps_old_ids(photo_folder):
    base = dict(images=find_images(photo_folder), root=str(photo_folder), metrics=["niqe"], attacks=["fgsm"])
    lab, msu = Experiment(**base), Experiment(**base, protocol="msu")
    assert lab.id != msu.id
    old = {k: v for k, v in lab.to_dict().items() if k != "protocol"}  # stored before the field
    assert Experiment.from_dict(old).id == lab.id and Experiment.from_dict(old).protocol == "lab"
    assert Experiment.from_json(msu.to_json()).protocol == "msu"
    with pytest.raises(ValueError, match="unknown protocol"):
        Experiment(**base, protocol="8bit")


def _rows(tmp_path, folder, protocol):
    exp = Experiment(images=find_images(folder)[:1], root=str(folder), metrics=["brisque"],
                     attacks=[OFF_GRID_ATTACK], defences=["resize[msu-literal scale=0.5]"], seed=5, device="cpu",
                     save_images=True, protocol=protocol)
    store = ResultStore(tmp_path / f"{protocol}.sqlite")
    list(run_experiment(exp, store))
    return exp, store, store.rows(exp.id)


def test_msu_protocol_scores_the_8bit_attacked_image_and_the_small_defended_one(tmp_path, photo_folder, brisque):
    exp, store, rows = _rows(tmp_path, photo_folder, "msu")
    assert store.manifest(exp.id)["spec"]["protocol"] == "msu"
    resized = [r for r in rows if r["defence"] == "resize"]
    assert len(resized) == 1
    for r in resized:
        assert r["error"] is None
        png = _png(store.image_path(exp.id, r["item_id"], "attacked"))  # lossless: the 8-bit image itself
        assert float(brisque.score(png)[0]) == pytest.approx(r["attacked"], rel=1e-5, abs=1e-5)
        small = ref.resize(png, 0.5)
        assert small.shape[-2:] == (80, 80)  # MSU scores the shrunk image, not one resized back
        assert float(brisque.score(small)[0]) == pytest.approx(r["defended-attacked"], rel=1e-5, abs=1e-5)
        # full-reference measures: the small image resized back to H×W (torchvision's Resize)
        back = torch.nn.functional.interpolate(small, size=png.shape[-2:], mode="bilinear", antialias=True)
        clean = _png(photo_folder / r["image_name"])
        mse = float((clean - back).pow(2).mean())
        assert r["mse_clear_defended-attacked"] == pytest.approx(mse, rel=1e-4)


def test_lab_protocol_scores_the_float_attacked_image(tmp_path, photo_folder, brisque):
    exp, store, rows = _rows(tmp_path, photo_folder, "lab")
    lab = {r["image_name"]: r for r in rows if r["defence"] == "none"}
    _, _, msu_rows = _rows(tmp_path, photo_folder, "msu")
    msu = {r["image_name"]: r for r in msu_rows if r["defence"] == "none"}
    assert lab.keys() == msu.keys()
    for name in lab:  # the same attack; only the rounding to 8 bits differs
        assert lab[name]["clear"] == msu[name]["clear"]
        assert lab[name]["attacked"] != msu[name]["attacked"]
        # BRISQUE reads fine texture: a sub-1/255 rounding moves it by several points
