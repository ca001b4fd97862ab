"""The ``train-fcn`` command line."""
from __future__ import annotations

import argparse

from engine.cli.train_fcn import add_train_fcn_parser, train_fcn_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_train_fcn_parser(p.add_subparsers(dest="command"))
    return p


def test_parser_maps_options_and_keeps_the_papers_defaults():
    args = _parser().parse_args(["train-fcn", "photos", "--attack", "ifgsm:eps=4/255", "--metric", "niqe",
                                 "--epochs", "7", "--out", "x.pt", "--no-resume"])
    assert args.func is train_fcn_cli
    assert (args.folder, args.attack, args.metric, args.epochs, args.out) == \
        ("photos", "ifgsm:eps=4/255", "niqe", 7, "x.pt")
    assert args.no_resume
    d = _parser().parse_args(["train-fcn", "photos"])
    assert (d.batch_size, d.lr, d.val_split, d.epochs, d.attack) == (4, 1e-3, 0.2, 200, None)


def test_bad_folder_exits_with_usage_error(tmp_path, capsys):
    args = _parser().parse_args(["train-fcn", str(tmp_path / "missing"), "--metric", "niqe",
                                 "--out", str(tmp_path / "f.pt"), "--device", "cpu"])
    assert train_fcn_cli(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_trains_on_a_folder_against_niqe(photo_folder, tmp_path, capsys):
    out = tmp_path / "fcn.pt"
    args = _parser().parse_args(["train-fcn", str(photo_folder), "--attack", "ifgsm:iters=1:eps=4/255",
                                 "--metric", "niqe", "--epochs", "1", "--crop", "64", "--out", str(out),
                                 "--device", "cpu"])
    assert train_fcn_cli(args) == 0
    text = capsys.readouterr().out
    assert "epoch 1/1" in text and "attacked 3/3" in text and out.is_file()
