"""Robust fine-tuning of a learned metric: learning, robustness, saving, resuming, rows.

The data set is built here: real photos degraded at graded levels (blur, JPEG, noise)
with a known decreasing score (tests/engine/training/_iqa_data.py); the metric is a tiny
plug-in network (_tiny_metric.py) registered for this module.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.evaluation.correlation import srocc
from engine.training.pairs import TrainingError
from tests.engine.training import _tiny_metric
from tests.engine.training._iqa_data import build_dataset

COMMON = {"metric": _tiny_metric.NAME, "epochs": 6, "lr": 1e-2, "loss": "mse", "batch_size": 4, "val_split": 0.4,
              "crop_size": 64, "seed": 0, "val_attack_images": 0, "device": "cpu"}


@pytest.fixture(scope="module", autouse=True)
def tiny_metric():
    _tiny_metric.register()
    yield
    _tiny_metric.unregister()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    folder = tmp_path_factory.mktemp("iqa") / "set"
    return folder, build_dataset(folder, size=32, kinds=("blur",))


def _train(folder: Path, out: Path, **kw) -> list:
    from engine.training.robust import train_robust

    return list(train_robust(folder, checkpoint_path=out, **{**COMMON, **kw}))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> dict[str, Path]:
    """The same data and seed trained normally, with AT and with NT."""
    folder, _ = data
    out = tmp_path_factory.mktemp("weights")
    runs = {"none": {}, "at": {"attack": "pgd:eps=4/255:alpha=2/255:iters=2"}, "nt": {"nt_weight": 1.0}}
    paths = {}
    for method, kw in runs.items():
        paths[method] = out / f"{method}.pt"
        _train(folder, paths[method], method=method, **kw)
    return paths


def _load(path: Path):
    from engine.metrics import create_metric

    return create_metric(_tiny_metric.NAME, weights=str(path))


def _val(folder: Path, path: Path) -> list[tuple[str, torch.Tensor]]:
    from engine.io.images import load_image

    side = json.loads(path.with_name(path.stem + ".recipe.json").read_text())
    return [(n, load_image(folder / n).tensor) for n in side["val_images"]]


def _ifgsm_gain(metric, images) -> float:
    """Mean |M(x_a) − M(x)| / range of I-FGSM ε = 4/255 (10 steps of 1/255), re-derived here."""
    gains = []
    for _, x in images:
        clean = float(metric.score(x)[0])
        delta = torch.zeros_like(x)
        for _ in range(10):
            xi = (x + delta).clamp(0, 1).requires_grad_(True)
            (g,) = torch.autograd.grad(metric.score(xi, grad=True).sum(), xi)
            delta = (delta + g.sign() / 255).clamp(-4 / 255, 4 / 255)
        gains.append(abs(float(metric.score((x + delta).clamp(0, 1))[0]) - clean) / metric.range)
    return sum(gains) / len(gains)


def test_normal_training_learns_the_ranking(data, trained):
    folder, scores = data
    m = _load(trained["none"])
    val = _val(folder, trained["none"])
    preds = [float(m.score(x)[0]) for _, x in val]
    truth = [scores[n] for n, _ in val]
    gen = torch.Generator().manual_seed(1)
    shuffled = [srocc(preds, [truth[i] for i in torch.randperm(len(truth), generator=gen).tolist()])
                for _ in range(20)]
    assert srocc(preds, truth) > 0.6
    assert srocc(preds, truth) > sum(shuffled) / len(shuffled) + 0.4


@pytest.mark.parametrize("method", ["at", "nt"])
def test_robust_training_lowers_the_ifgsm_gain(data, trained, method):
    folder, _ = data
    val = _val(folder, trained["none"])
    plain = _ifgsm_gain(_load(trained["none"]), val)
    assert plain > 0.05  # the normally trained metric is attackable at all
    assert _ifgsm_gain(_load(trained[method]), val) < 0.8 * plain


def test_split_is_seeded_and_stored(data, trained):
    a = json.loads(trained["none"].with_name("none.recipe.json").read_text())
    b = json.loads(trained["at"].with_name("at.recipe.json").read_text())
    assert a["val_images"] == b["val_images"] and a["train_images"] == b["train_images"]
    assert not set(a["val_images"]) & set(a["train_images"])
    saved = torch.load(trained["at"], map_location="cpu", weights_only=True)
    assert saved["robust_recipe"]["val_images"] == a["val_images"]


@pytest.mark.parametrize("method,kw", [("free-at", {"replays": 2}), ("at-corrected", {"attack": "fgsm:eps=4/255"})])
def test_free_at_and_corrected_at_run_and_save(data, tmp_path, method, kw):
    from engine.spec.recipes import file_sha256

    folder, _ = data
    out = tmp_path / "w.pt"
    steps = _train(folder, out, method=method, epochs=2, val_attack_images=2, **kw)
    assert [s.epoch for s in steps] == [1, 2]
    assert all(s.val_gain == s.val_gain and s.val_gain >= 0 for s in steps)  # measured, not NaN
    side = json.loads((tmp_path / "w.recipe.json").read_text())
    assert side["recipe"]["method"] == method
    assert side["weights_sha256"] == file_sha256(out)
    saved = torch.load(out, map_location="cpu", weights_only=True)
    assert saved["robust_recipe"]["recipe"]["method"] == method
    assert torch.equal(_load(out).net.state_dict()["head.2.bias"], saved["state_dict"]["head.2.bias"])


def test_corrected_labels_drop_with_ssim():
    from engine.evaluation.pairs import ssim
    from engine.training.robust import corrected_targets

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x_adv = x.clone()
    x_adv[1] = (x[1] + 0.1 * torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    t = torch.tensor([0.8, 0.8])
    got = corrected_targets(t, x_adv, x, "ssim", 2.0)
    assert got[0] == pytest.approx(0.8)
    assert got[1] == pytest.approx(max(0.0, 0.8 - 2.0 * (1 - float(ssim(x_adv[1:], x[1:])[0]))), abs=1e-6)


def test_nt_penalty_is_the_l1_gradient_norm_of_a_linear_metric():
    from engine.metrics.base import Metric
    from engine.training.robust import nt_penalty

    w = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    class Linear(Metric):
        bounds = (0.0, 4.0)

        def forward(self, x):
            return (x * w).flatten(1).sum(1)

    m = Linear()
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    pen = nt_penalty(m, x, m.score(x, grad=True), h=1e-2)
    expected = (float(w.abs().sum()) / 4.0) ** 2 / 2  # ‖∇ₓM‖₁ = Σ|w| for every image
    assert float(pen) == pytest.approx(expected, rel=1e-3)


def test_resume_after_stop_equals_an_uninterrupted_run(data, tmp_path):
    from engine.training.robust import train_robust

    folder, _ = data
    kw = {**COMMON, "method": "free-at", "replays": 2, "epochs": 3}
    list(train_robust(folder, checkpoint_path=tmp_path / "full.pt", **kw))
    run = train_robust(folder, checkpoint_path=tmp_path / "part.pt", **kw)
    next(run)
    run.close()  # stop after epoch 1
    resumed = list(train_robust(folder, checkpoint_path=tmp_path / "part.pt", **kw))
    assert [s.epoch for s in resumed] == [2, 3]
    a = torch.load(tmp_path / "full.last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "part.last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(TrainingError, match="different training run"):
        list(train_robust(folder, checkpoint_path=tmp_path / "part.pt", **{**kw, "seed": 1}))


def test_robust_variant_is_its_own_row_in_the_leaderboard_and_report(data, trained, tmp_path):
    from engine.evaluation.leaderboard import leaderboard
    from engine.spec.experiment import ComponentSpec, Experiment
    from engine.evaluation.tables import summarise
    from engine.results.report.build import build_report
    from engine.run.driver import run_experiment
    from engine.store.db import ResultStore

    folder, _ = data
    images = sorted(str(p) for p in folder.glob("*_ref.png"))[:3]
    robust = ComponentSpec(_tiny_metric.NAME, {"weights": str(trained["at"])})
    exp = Experiment(images=images, root=str(folder), metrics=[robust, ComponentSpec(_tiny_metric.NAME)],
                     attacks=["ifgsm:eps=4/255:iters=2"], defences=["jpeg"], seed=0, device="cpu")
    with ResultStore(tmp_path / "r.sqlite") as store:
        for _ in run_experiment(exp, store):
            pass
        rows = store.rows(store.resolve(None))
        manifest = store.manifest(exp.id)
    sha = json.loads(trained["at"].with_name("at.recipe.json").read_text())["weights_sha256"]
    label = f"{_tiny_metric.NAME}+AT(PGD 4/255)#{sha[:6]}"
    assert robust.label == label
    assert {r["metric"] for r in rows} == {label, _tiny_metric.NAME} and not any(r.get("error") for r in rows)
    board = leaderboard(summarise(rows))
    assert {r["name"] for r in board if r["table"] == "metrics"} == {label, _tiny_metric.NAME}
    assert label in {r["metric"] for r in board if r["table"] == "defences"}
    recorded = [w for w in manifest["metric_weights"] if w["sha256"] == sha]
    assert len(recorded) == 1 and recorded[0]["recipe"]["method"] == "at"
    html = build_report(tmp_path / "r.sqlite", tmp_path / "report").read_text(encoding="utf-8")
    assert label in html
    assert "trained with AT(PGD 4/255)" in html and "white-box against these weights" in html


def test_weights_without_a_recipe_keep_the_plain_label_and_are_still_hashed(tmp_path):
    from engine.spec.experiment import ComponentSpec
    from engine.spec.recipes import file_sha256, weights_manifest

    plain = tmp_path / "other.pt"
    plain.write_bytes(b"not from train-robust")
    spec = ComponentSpec(_tiny_metric.NAME, {"weights": str(plain)})
    assert spec.label == f"{_tiny_metric.NAME}(weights={plain})"
    missing = ComponentSpec(_tiny_metric.NAME, {"weights": str(tmp_path / "gone.pt")})
    got = weights_manifest([spec, missing, ComponentSpec("niqe")])
    assert [g["sha256"] for g in got] == [file_sha256(plain), None]
    assert all(g["recipe"] is None for g in got)


def test_cli_trains_and_reports_bad_input(data, tmp_path, capsys):
    from engine.cli import main

    folder, _ = data
    out = tmp_path / "cli.pt"
    rc = main(["train-robust", str(folder), "--metric", _tiny_metric.NAME, "--method", "nt", "--epochs", "1",
               "--crop", "32", "--val-attack-images", "1", "--out", str(out), "--device", "cpu"])
    text = capsys.readouterr().out
    assert rc == 0 and "epoch 1/1" in text and "val_srocc" in text and out.is_file()
    rc = main(["train-robust", str(tmp_path / "nothing"), "--metric", _tiny_metric.NAME, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
