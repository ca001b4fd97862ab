"""cnn-attack: a per-image perturbation generator trained over a folder, saved like a UAP
file, bounded by ε for any weights, raising the metric on its training photos."""
from __future__ import annotations

import argparse

import pytest
import torch

from engine.attacks import ATTACKS
from engine.attacks.cnn_attack import PerturbationUNet, load_cnn_attack, save_cnn_attack, train_cnn_attack
from engine.attacks.uap import save_uap
from engine.cli.train_uap import add_train_uap_parser, train_uap_cli
from tests.conftest import photo_tensor
from tests.engine.attacks.helpers import improved, run_all

EPS = 8 / 255
NAMES = ("astronaut", "coffee", "chelsea", "rocket")


def train(src, metric, seed=0):
    return train_cnn_attack(src, metric, eps=EPS, epochs=3, batch_size=2, lr=1e-2, seed=seed, size=64,
                            width=8, levels=2)


@pytest.fixture(scope="module")
def photos64() -> list[torch.Tensor]:
    return [photo_tensor(n, (64, 64)) for n in NAMES]


@pytest.fixture(scope="module")
def trained(brisque, photos64):
    return run_all(train(photos64, brisque))


def test_training_raises_the_score_on_the_training_photos(brisque, photos64, trained):
    steps, model = trained
    assert len(steps) == 6 and [s.epoch_done for s in steps] == [False, True] * 3
    x = torch.cat(photos64)
    adv = (x + model.net.delta(x, model.eps)).clamp(0, 1)
    assert int(improved(brisque, x, adv).sum()) >= 3
    assert float((adv - x).abs().max()) <= EPS + 1e-7
    # the untrained generator (same seed, no step) does not already do it
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        fresh = PerturbationUNet(8, 2)
    gain = lambda a: float(brisque.sign * (brisque.score(a) - brisque.score(x)).mean())  # noqa: E731
    assert gain(adv) > gain((x + fresh.delta(x, EPS)).clamp(0, 1)) + 1.0


def test_same_seed_same_generator(brisque, photos64, trained):
    again = run_all(train(photos64, brisque))[1]
    for (k, a), b in zip(trained[1].net.state_dict().items(), again.net.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_attack_stays_within_eps_for_any_weights(tmp_path, brisque, seed):
    """Weights blown up ×50 (tanh saturates): what the attack produces is still within ε of
    the image, at any size (odd sizes padded and cropped back), and in [0, 1]."""
    torch.manual_seed(seed)
    net = PerturbationUNet(width=4, levels=3)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(50)
    path = save_cnn_attack(tmp_path / "big.pt", net, eps=0.1)
    for size in ((37, 53), (64, 64)):
        x = photo_tensor("coffee", size)
        for eps in (EPS, 0.5):  # the attack's ε, or the file's (0.1) when that is smaller
            out = ATTACKS.get("cnn-attack")(perturbation=str(path), eps=eps)(x, brisque)
            d = (out.image - x).abs()
            assert out.image.shape == x.shape
            assert float(d.max()) <= min(eps, 0.1) + 1e-6
            assert float(d.max()) >= min(eps, 0.1) * 0.99  # saturated: the bound is reached
            assert 0.0 <= float(out.image.min()) and float(out.image.max()) <= 1.0


def test_the_perturbation_depends_on_the_image(tmp_path, brisque, trained):
    path = trained[1].save(tmp_path / "cnn.pt", {"method": "cnn"})
    x = torch.cat([photo_tensor(n, (64, 64)) for n in ("rocket", "astronaut")])
    out = ATTACKS.get("cnn-attack")(perturbation=str(path), eps=EPS)(x, brisque)
    d = out.image - x
    assert not torch.allclose(d[0], d[1], atol=1e-4)  # unlike a UAP
    assert [s.iteration for s in out.steps] == [0, 1]
    net, eps, manifest = load_cnn_attack(path)
    assert eps == pytest.approx(EPS) and manifest == {"method": "cnn"}
    assert torch.allclose(net.delta(x, eps), trained[1].net.delta(x, EPS))


def test_missing_or_wrong_files_give_clear_errors(tmp_path, brisque):
    x = photo_tensor("coffee", (32, 32))
    with pytest.raises(FileNotFoundError, match="train-uap FOLDER --method cnn"):
        ATTACKS.get("cnn-attack")()(x, brisque)
    with pytest.raises(FileNotFoundError, match="not found"):
        ATTACKS.get("cnn-attack")(perturbation=str(tmp_path / "nope.pt"))(x, brisque)
    uap = save_uap(tmp_path / "uap.pt", torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="not a generator file"):
        ATTACKS.get("cnn-attack")(perturbation=str(uap))(x, brisque)


def test_train_uap_method_cnn_writes_a_file_the_attack_loads(photo_folder, tmp_path, capsys, brisque):
    p = argparse.ArgumentParser()
    add_train_uap_parser(p.add_subparsers(dest="command"))
    out = tmp_path / "cnn.pt"
    args = p.parse_args(["train-uap", str(photo_folder), "--method", "cnn", "--metric", "brisque",
                         "--eps", "8/255", "--epochs", "1", "--batch-size", "3", "--size", "32",
                         "--out", str(out), "--device", "cpu"])
    assert train_uap_cli(args) == 0
    assert "cnn-attack:perturbation=" in capsys.readouterr().out
    net, eps, manifest = load_cnn_attack(out)
    assert manifest["method"] == "cnn" and eps == pytest.approx(EPS)
    x = photo_tensor("rocket", (48, 48))
    img = ATTACKS.get("cnn-attack")(perturbation=str(out))(x, brisque).image
    assert not torch.equal(img, x) and float((img - x).abs().max()) <= EPS + 1e-6


def test_registered_as_a_file_based_attack():
    cls = ATTACKS.get("cnn-attack")
    assert cls.universal and "paper" in cls.presets and "eps=4/255" in cls.presets
