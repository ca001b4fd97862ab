"""cumulative-uap and generative-uap: trained over a folder, saved like uap, one
perturbation for every image, and ``train-uap --method`` writes files that load."""
from __future__ import annotations

import argparse

import pytest
import torch

from engine.attacks import ATTACKS
from engine.attacks.cumulative_uap import train_cumulative_uap
from engine.attacks.generative_uap import train_generative_uap
from engine.attacks.uap import load_uap, save_uap
from engine.cli.train_uap import add_train_uap_parser, train_uap_cli
from tests.conftest import photo_tensor
from tests.engine.attacks.helpers import run_all

EPS = 8 / 255
TRAINERS = {
    "cumulative-uap": lambda src, m, seed=0: train_cumulative_uap(src, m, eps=EPS, epochs=2, batch_size=2,
                                                                   lr=50.0, seed=seed, size=64),
    "generative-uap": lambda src, m, seed=0: train_generative_uap(src, m, eps=EPS, epochs=2, batch_size=2,
                                                                   lr=1e-2, seed=seed, size=64, width=4),
}


@pytest.fixture(scope="module")
def trained(brisque):
    src = [photo_tensor(n, (64, 64)) for n in ("astronaut", "coffee", "chelsea")]
    return {name: run_all(t(src, brisque)) for name, t in TRAINERS.items()}


@pytest.mark.parametrize("name", list(TRAINERS))
def test_training_yields_batches_and_a_bounded_perturbation(name, trained):
    steps, delta = trained[name]
    assert len(steps) == 4 and [s.epoch_done for s in steps] == [False, True, False, True]
    assert delta.shape == (1, 3, 64, 64)
    assert 0 < float(delta.abs().max()) <= EPS + 1e-7


@pytest.mark.parametrize("name", list(TRAINERS))
def test_same_seed_same_perturbation(name, brisque, trained):
    src = [photo_tensor(n, (64, 64)) for n in ("astronaut", "coffee", "chelsea")]
    assert torch.equal(run_all(TRAINERS[name](src, brisque))[1], trained[name][1])


@pytest.mark.parametrize("name", list(TRAINERS))
def test_the_perturbation_is_the_same_for_every_image(name, tmp_path, trained, brisque):
    path = save_uap(tmp_path / f"{name}.pt", trained[name][1], {"method": name})
    x = torch.cat([photo_tensor(n, (96, 96)) for n in ("rocket", "astronaut", "coffee")])
    out = ATTACKS.get(name)(perturbation=str(path), eps=EPS)(x, brisque)
    d = out.image - x
    inside = ((x > EPS) & (x < 1 - EPS)).all(dim=0)  # where no image was clamped
    assert bool(inside.any())
    for i in (1, 2):
        assert torch.allclose(d[i][inside], d[0][inside], atol=1e-6)
    assert float(d.abs().max()) > EPS / 4


def test_generator_output_is_bounded_for_any_weights():
    from engine.attacks.generative_uap import PerturbationGenerator

    g = PerturbationGenerator(width=4)
    z = torch.rand(1, 3, 32, 32) * 100
    out = EPS * torch.tanh(g(z))
    assert out.shape == (1, 3, 32, 32) and float(out.abs().max()) <= EPS


def test_generative_size_must_suit_the_network(brisque):
    with pytest.raises(ValueError, match="multiple of 8"):
        next(train_generative_uap([photo_tensor("coffee", (64, 64))], brisque, size=60))


@pytest.mark.parametrize("method, attack", [("cumulative", "cumulative-uap"), ("generative", "generative-uap")])
def test_train_uap_method_writes_a_file_that_loads(method, attack, photo_folder, tmp_path, capsys, brisque):
    p = argparse.ArgumentParser()
    add_train_uap_parser(p.add_subparsers(dest="command"))
    out = tmp_path / f"{method}.pt"
    args = p.parse_args(["train-uap", str(photo_folder), "--method", method, "--metric", "brisque",
                         "--eps", "8/255", "--epochs", "1", "--batch-size", "3", "--size", "64",
                         "--out", str(out), "--device", "cpu"])
    assert train_uap_cli(args) == 0
    assert f"{attack}:perturbation=" in capsys.readouterr().out
    delta, manifest = load_uap(out)
    assert manifest["method"] == method and delta.shape == (1, 3, 64, 64)
    assert float(delta.abs().max()) <= EPS + 1e-7
    x = photo_tensor("rocket", (80, 80))
    img = ATTACKS.get(attack)(perturbation=str(out), eps=EPS)(x, brisque).image
    assert not torch.equal(img, x)
