"""The ``train-uap`` command line: trains over a folder, saves δ with its manifest,
and the saved file drives the ``uap`` attack."""
from __future__ import annotations

import argparse

import pytest
import torch

from engine.cli import make_parser
from engine.cli.train_uap import add_train_uap_parser, train_uap_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_train_uap_parser(p.add_subparsers(dest="command"))
    return p


def test_main_cli_offers_train_uap_with_fraction_budgets():
    args = make_parser().parse_args(["train-uap", "photos", "--metric", "niqe", "--eps", "8/255",
                                     "--step", "0.002", "--epochs", "3", "--out", "u.pt"])
    assert args.func is train_uap_cli
    assert (args.folder, args.metric, args.epochs, args.out) == ("photos", "niqe", 3, "u.pt")
    assert abs(args.eps - 8 / 255) < 1e-12 and args.step == 0.002
    for bad in ("1/0", "big"):
        with pytest.raises(SystemExit):
            make_parser().parse_args(["train-uap", "photos", "--eps", bad])
    d = _parser().parse_args(["train-uap", "photos"])
    assert (d.eps, d.step, d.batch_size, d.size, d.seed) == (10 / 255, 1 / 255, 4, 256, 0)


def test_bad_folder_is_a_usage_error(tmp_path, capsys):
    args = _parser().parse_args(["train-uap", str(tmp_path / "missing"), "--metric", "brisque",
                                 "--device", "cpu"])
    assert train_uap_cli(args) == 2
    assert "not a folder" in capsys.readouterr().err


def test_trains_saves_and_the_file_drives_the_uap_attack(photo_folder, tmp_path, capsys, brisque):
    from engine.attacks import ATTACKS, run_to_end
    from engine.attacks.uap import load_uap
    from tests.conftest import photo_tensor

    out = tmp_path / "uap" / "brisque.pt"
    args = _parser().parse_args(["train-uap", str(photo_folder), "--metric", "brisque", "--eps", "8/255",
                                 "--step", "2/255", "--epochs", "3", "--batch-size", "2", "--size", "64",
                                 "--seed", "3", "--out", str(out), "--device", "cpu"])
    assert train_uap_cli(args) == 0
    text = capsys.readouterr().out
    assert "epoch 1/3" in text and "epoch 3/3" in text and "saved" in text
    delta, manifest = load_uap(out)
    assert delta.shape == (1, 3, 64, 64) and float(delta.abs().max()) <= 8 / 255 + 1e-7
    assert manifest["metric"] == "brisque" and manifest["seed"] == 3 and manifest["size"] == 64
    assert abs(manifest["eps"] - 8 / 255) < 1e-12 and manifest["folder"] == str(photo_folder.resolve())
    # the run is reproducible from the manifest: same settings → same δ
    again = tmp_path / "again.pt"
    args.out = str(again)
    assert train_uap_cli(args) == 0
    assert torch.equal(load_uap(again)[0], delta)
    # and the perturbation raises quality (BRISQUE: lower is better) on an unseen photo
    x = photo_tensor("rocket", (96, 128))
    outcome = run_to_end(ATTACKS.get("uap")(perturbation=str(out), eps=8 / 255).run(x, brisque))
    clean, attacked = outcome.steps[0].score, outcome.steps[-1].score
    assert float(attacked) < float(clean)
