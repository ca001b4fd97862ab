"""Training the FCN filter on a few real photos (CPU, tiny crops, few epochs)."""
from __future__ import annotations

import math

import pytest
import torch

from engine.defences import DEFENCES
from engine.evaluation.pairs import ssim
from engine.metrics.base import Metric
from engine.training import TrainingError, train_fcn
from engine.training.fcn_trainer import (
    last_checkpoint_path,
    previous_history,
    split_indices,
)
from engine.training.pairs import attack_folder
from tests.conftest import photo_tensor
from tests.engine.attacks.helpers import run_all

ATTACK = "ifgsm:iters=2:eps=8/255:alpha=4/255"


class Brightness(Metric):
    """A cheap differentiable stand-in metric: mean intensity, higher is better."""

    name = "brightness"
    bounds = (0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3))


def noisy_pairs(n: int = 4, side: int = 72):
    g = torch.Generator().manual_seed(0)
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket")[:n]:
        clean = photo_tensor(name, (side, side))
        out.append(((clean + 0.04 * torch.randn(clean.shape, generator=g)).clamp(0, 1), clean))
    return out


def test_training_on_an_attacked_folder_gives_a_working_defence(photo_folder, tmp_path):
    ckpt = tmp_path / "out" / "fcn.pt"
    steps, result = run_all(train_fcn(photo_folder, attack=ATTACK, metric=Brightness(), epochs=3,
                                      batch_size=1, crop_size=64, seed=0, checkpoint_path=ckpt,
                                      device="cpu"))
    assert [s.epoch for s in steps] == [1, 2, 3]
    assert all(math.isfinite(s.train_loss) and math.isfinite(s.val_ssim) for s in steps)
    assert steps[-1].train_loss < steps[0].train_loss
    assert steps[0].best and result == ckpt and ckpt.is_file()

    d = DEFENCES.get("fcn")(checkpoint=str(ckpt))
    pairs, _, _ = attack_folder(photo_folder, ATTACK, Brightness(), seed=0, device=torch.device("cpu"))
    assert d.model.residual is False  # loads the checkpoint and its manifest
    m = d.manifest
    assert m["attack"]["name"] == "ifgsm" and m["metric"]["name"] == "brightness" and m["seed"] == 0
    assert sorted(m["train_images"] + m["val_images"]) == sorted(pairs.names) and len(m["val_images"]) == 1
    assert m["folder"] == str(photo_folder.resolve()) and m["versions"]["torch"]
    best = max(steps, key=lambda s: s.val_ssim)
    assert m["val_ssim"] == pytest.approx(best.val_ssim) and m["best_epoch"] == best.epoch
    # the checkpoint is the in-training model of the best epoch: same validation SSIM
    i = pairs.names.index(m["val_images"][0])
    assert float(ssim(pairs.clean[i], d(pairs.attacked[i]))[0]) == pytest.approx(best.val_ssim, abs=1e-5)
    # the pairs really are attacks on the chosen metric
    assert all(a.mean() > c.mean() for a, c in zip(pairs.attacked, pairs.clean))


def test_stop_and_resume_follows_the_uninterrupted_run(tmp_path):
    pairs = noisy_pairs()
    kw = {"epochs": 3, "batch_size": 2, "crop_size": 48, "seed": 1, "device": "cpu"}
    straight, _ = run_all(train_fcn(pairs, checkpoint_path=tmp_path / "a" / "f.pt", **kw))

    gen = train_fcn(pairs, checkpoint_path=tmp_path / "b" / "f.pt", **kw)
    first = next(gen)
    gen.close()  # the GUI's stop button
    assert first.epoch == 1 and last_checkpoint_path(tmp_path / "b" / "f.pt").is_file()
    # what the GUI plots before resuming; nothing for a run that has no readable resume file
    assert previous_history(tmp_path / "b" / "f.pt") == [
        {"epoch": 1, "train_loss": first.train_loss, "val_ssim": first.val_ssim}]
    assert previous_history(tmp_path / "c" / "f.pt") == []
    (tmp_path / "c").mkdir()
    last_checkpoint_path(tmp_path / "c" / "f.pt").write_bytes(b"not a checkpoint")
    assert previous_history(tmp_path / "c" / "f.pt") == []
    rest, result = run_all(train_fcn(pairs, checkpoint_path=tmp_path / "b" / "f.pt", **kw))
    assert [s.epoch for s in rest] == [2, 3]
    assert [s.train_loss for s in [first, *rest]] == pytest.approx([s.train_loss for s in straight], rel=1e-5)
    a = torch.load(last_checkpoint_path(tmp_path / "a" / "f.pt"), weights_only=True)
    b = torch.load(last_checkpoint_path(result), weights_only=True)
    assert b["epoch"] == 3 and len(b["manifest"]["history"]) == 3
    for k in a["state_dict"]:
        assert torch.allclose(a["state_dict"][k], b["state_dict"][k], atol=1e-6)

    more, _ = run_all(train_fcn(pairs, checkpoint_path=result, **{**kw, "epochs": 4}))
    assert [s.epoch for s in more] == [4]
    done, again = run_all(train_fcn(pairs, checkpoint_path=result, **{**kw, "epochs": 4}))
    assert done == [] and again == result


def test_resume_refuses_a_run_with_other_settings(tmp_path):
    pairs = noisy_pairs(3, 48)
    ckpt = tmp_path / "f.pt"
    run_all(train_fcn(pairs, epochs=1, crop_size=32, checkpoint_path=ckpt, device="cpu"))
    with pytest.raises(TrainingError, match="lr"):
        next(train_fcn(pairs, epochs=2, lr=1e-2, crop_size=32, checkpoint_path=ckpt, device="cpu"))
    fresh = next(train_fcn(pairs, epochs=2, lr=1e-2, crop_size=32, checkpoint_path=ckpt, device="cpu",
                           resume=False))
    assert fresh.epoch == 1


def test_split_is_seeded_disjoint_and_complete():
    tr, va = split_indices(10, 0.2, seed=3)
    assert len(va) == 2 and sorted(tr + va) == list(range(10))
    assert split_indices(10, 0.2, seed=3) == (tr, va)
    assert any(split_indices(10, 0.2, seed=s)[1] != va for s in range(4, 10))
    with pytest.raises(TrainingError, match="at least 2"):
        split_indices(1, 0.2, seed=0)
    with pytest.raises(TrainingError, match="val_split"):
        split_indices(5, 0.0, seed=0)


def test_bad_folders_are_clear_errors(tmp_path):
    with pytest.raises(TrainingError, match="does not exist"):
        next(train_fcn(tmp_path / "nope", attack=ATTACK, metric=Brightness(), device="cpu"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="no images"):
        next(train_fcn(tmp_path / "empty", attack=ATTACK, metric=Brightness(), device="cpu"))
