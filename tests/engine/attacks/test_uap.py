"""UAP: train over a folder, save, load, apply to new images within ε."""
from __future__ import annotations

import pytest
import torch

from engine.attacks import ATTACKS, run_to_end
from engine.attacks.uap import UAP, UAPTrainStep, apply_uap, load_uap, save_uap, train_uap
from tests.conftest import photo_tensor
from tests.engine.attacks.helpers import CountingMetric, improved, run_all

EPS = 8 / 255


def train(source, metric, seed=0):
    return run_all(train_uap(source, metric, eps=EPS, epochs=4, batch_size=2, step=2 / 255, seed=seed,
                             size=64))


@pytest.fixture(scope="module")
def trained(brisque):
    """A UAP trained on three photos given as tensors."""
    ims = [photo_tensor(n, (128, 128)) for n in ("astronaut", "coffee", "chelsea")]
    return train(ims, brisque)


def test_training_yields_steps_and_improves(trained):
    steps, delta = trained
    assert all(isinstance(s, UAPTrainStep) for s in steps)
    assert len(steps) == 4 * 2  # 3 images, batch 2 → 2 batches per epoch
    summaries = [s for s in steps if s.epoch_done]
    assert [s.epoch for s in summaries] == [0, 1, 2, 3]
    assert summaries[-1].mean_score < summaries[0].mean_score  # BRISQUE: lower is better
    assert delta.shape == (1, 3, 64, 64)
    assert float(delta.abs().max()) <= EPS + 1e-7 and float(delta.abs().max()) > EPS / 2


def test_training_from_a_folder_is_deterministic(photo_folder, brisque):
    s1, d1 = train(photo_folder, brisque, seed=5)
    s2, d2 = train(photo_folder, brisque, seed=5)
    assert torch.equal(d1, d2) and s1 == s2


def test_save_load_and_apply_to_new_images(tmp_path, trained, brisque):
    _, delta = trained
    path = save_uap(tmp_path / "uap" / "brisque.pt", delta, {"metric": "brisque", "eps": EPS})
    loaded, manifest = load_uap(path)
    assert torch.equal(loaded, delta) and manifest == {"metric": "brisque", "eps": EPS}
    assert path.stat().st_size < 200_000
    # new images, of another size than the perturbation
    x = torch.cat([photo_tensor(n, (96, 160)) for n in ("rocket", "immunohistochemistry")])
    atk = ATTACKS.get("uap")(perturbation=str(path), eps=EPS)
    counting = CountingMetric(brisque)
    out = run_to_end(atk.run(x, counting))
    assert [s.iteration for s in out.steps] == [0, 1] and counting.calls == 2
    assert float((out.image - x).abs().max()) <= EPS + 1e-6
    assert torch.allclose(out.image, apply_uap(x, delta, EPS))
    assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1
    assert bool(improved(brisque, x, out.image).any())
    # a smaller ε preset clips the same perturbation harder
    small = UAP.from_preset("eps=2/255", perturbation=str(path))(x, brisque).image
    assert float((small - x).abs().max()) <= 2 / 255 + 1e-6


def test_missing_file_is_a_clear_error(tmp_path, brisque, batch):
    with pytest.raises(FileNotFoundError, match="not found"):
        UAP(perturbation=str(tmp_path / "nope.pt"))(batch[:1], brisque)
    with pytest.raises(FileNotFoundError, match="no perturbation file"):
        UAP()(batch[:1], brisque)
    bad = tmp_path / "bad.pt"
    torch.save({"x": 1}, bad)
    with pytest.raises(ValueError, match="not a UAP file"):
        load_uap(bad)


def test_empty_training_set_is_rejected(tmp_path, brisque):
    with pytest.raises(ValueError):
        next(train_uap([], brisque))
    with pytest.raises(ValueError, match="no images"):
        next(train_uap(tmp_path, brisque))


def test_a_rewritten_file_is_reloaded(tmp_path, brisque, batch):
    """The attack caches the resized perturbation; saving a new one to the same path
    (save_uap replaces the file) must be picked up."""
    x = batch[:1]
    path = tmp_path / "u.pt"
    delta = torch.full((1, 3, 32, 32), 4 / 255)
    save_uap(path, delta)
    atk = UAP(perturbation=str(path), eps=EPS)
    first = atk(x, brisque).image
    assert torch.allclose(atk(x, brisque).image, first)
    save_uap(path, -delta)
    second = atk(x, brisque).image
    assert torch.allclose(second, (x - 4 / 255).clamp(0, 1), atol=1e-6)
