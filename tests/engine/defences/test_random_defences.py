"""Random defences draw everything from the per-item seed: same seed → same transform on
the clean and the attacked image (and on any device); different seed → different draw."""
from __future__ import annotations

import pytest
import torch

from engine.defences import DEFENCES
from tests.conftest import photo_tensor

RANDOM = {
    "random-noise": {"sigma": 0.05},
    "random-crop": {"size": 24},
    "random-rotate": {"angle_limit": 30.0},
    "chain": {"steps": "random-rotate:angle_limit=20,random-noise:sigma=0.03,random-crop:size=24"},
}


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return photo_tensor("chelsea", (40, 48))


@pytest.fixture(scope="module")
def x_adv(x) -> torch.Tensor:
    """A perturbed copy (±2/255, random signs), like an attacked image."""
    g = torch.Generator().manual_seed(11)
    return (x + (2 / 255) * torch.randint(0, 2, x.shape, generator=g).mul(2).sub(1)).clamp(0, 1)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_same_seed_gives_identical_output(name, x):
    d = DEFENCES.get(name)(RANDOM[name])
    assert d.random
    assert torch.equal(d(x, seed=5), d(x, seed=5))


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_different_seed_gives_a_different_draw(name, x):
    d = DEFENCES.get(name)(RANDOM[name])
    assert not torch.equal(d(x, seed=5), d(x, seed=6))


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_clean_and_attacked_get_the_same_draw(name, x, x_adv):
    """Every draw is a map that moves pixels around (or adds the same noise), so with the
    same draw the outputs differ by at most the perturbation; another seed differs a lot."""
    d = DEFENCES.get(name)(RANDOM[name])
    eps = (x_adv - x).abs().max().item()
    same = (d(x, seed=9) - d(x_adv, seed=9)).abs().max().item()
    other = (d(x, seed=9) - d(x_adv, seed=10)).abs().max().item()
    assert same <= eps + 1e-5
    assert other > 5 * eps


def _coordinate_pattern(h: int, w: int) -> torch.Tensor:
    rows = torch.arange(h, dtype=torch.float32).div(255).view(h, 1).expand(h, w)
    cols = torch.arange(w, dtype=torch.float32).div(255).view(1, w).expand(h, w)
    return torch.stack([rows, cols, torch.zeros(h, w)]).unsqueeze(0)


def _crop_origin(y: torch.Tensor) -> tuple[int, int]:
    return round(y[0, 0, 0, 0].item() * 255), round(y[0, 1, 0, 0].item() * 255)


def test_crop_position_is_the_same_for_clean_and_perturbed():
    pat = _coordinate_pattern(60, 70)
    noise = torch.rand(pat.shape, generator=torch.Generator().manual_seed(1)).sub(0.5).mul(0.8 / 255)
    perturbed = (pat + noise).clamp(0, 1)  # |δ| < 0.4/255: the coordinates still read back
    d = DEFENCES.get("random-crop")(size=16)
    origins = {s: _crop_origin(d(pat, seed=s)) for s in range(8)}
    for s, o in origins.items():
        assert _crop_origin(d(perturbed, seed=s)) == o
        y = d(pat, seed=s)
        assert y.shape[-2:] == (16, 16)
        assert torch.equal(y, pat[..., o[0]:o[0] + 16, o[1]:o[1] + 16])
    assert len(set(origins.values())) > 4  # positions really vary with the seed


def test_each_image_of_a_batch_gets_its_own_draw_in_a_fixed_order():
    pat = _coordinate_pattern(60, 70)
    d = DEFENCES.get("random-crop")(size=16)
    batch = d(torch.cat([pat, pat, pat]), seed=4)
    assert torch.equal(batch[:1], d(pat, seed=4))  # the first image makes the first draw
    assert len({_crop_origin(batch[i:i + 1]) for i in range(3)}) > 1


def test_rotation_angle_stays_within_the_limit():
    from engine.defences.random_rotate import draw_angles

    a = draw_angles(2000, 15.0, torch.Generator().manual_seed(0))
    assert a.abs().max() <= 15.0 and a.min() < -14 and a.max() > 14
    assert abs(a.mean().item()) < 1.0


def test_noise_has_the_requested_sigma(x):
    mid = torch.full((1, 3, 64, 64), 0.5)
    y = DEFENCES.get("random-noise")(sigma=0.05)(mid, seed=3)
    assert (y - mid).std().item() == pytest.approx(0.05, rel=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA GPU (none here): runs the draw on the GPU; "
                           "test_draws_are_made_on_the_cpu_whatever_the_input checks the CPU side")
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_same_draw_on_cpu_and_cuda(name, x):
    d = DEFENCES.get(name)(RANDOM[name])
    assert torch.allclose(d(x, seed=8), d.to("cuda")(x.cuda(), seed=8).cpu(), atol=1e-4)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_draws_are_made_on_the_cpu_whatever_the_input(name, x, monkeypatch):
    """What makes the draw device-independent, checked without a GPU: every random call
    takes the seeded CPU generator and no device, and an input of another dtype (float64,
    as a stand-in for another device's tensor) gets the same transform."""
    calls = []

    def spy(fn):
        def wrapped(*args, **kwargs):
            calls.append((fn.__name__, kwargs.get("generator"), kwargs.get("device")))
            return fn(*args, **kwargs)
        return wrapped

    for fn in ("rand", "randn", "randint"):
        monkeypatch.setattr(torch, fn, spy(getattr(torch, fn)))
    d = DEFENCES.get(name)(RANDOM[name])
    y64 = d(x.double(), seed=8)
    assert calls, "the defence drew nothing"
    for fn, gen, device in calls:
        assert isinstance(gen, torch.Generator) and gen.device.type == "cpu", (fn, gen)
        # no device=: a draw made on x.device would differ between the CPU and a GPU
        assert device is None, (fn, device)
    monkeypatch.undo()
    y32 = d(x, seed=8)
    assert y64.dtype == torch.float64 and y64.shape == y32.shape
    assert torch.allclose(y64.float(), y32, atol=1e-4)
