"""EOT evaluation of random defences: N seeded draws, same draw on clean and attacked."""
from __future__ import annotations

import pytest
import torch

from engine.defences.base import Defence
from engine.evaluation.eot import draw_seed, eot_scores
from engine.metrics.base import Metric
from tests.conftest import photo_tensor


class Brightness(Metric):
    name = "brightness"
    bounds = (0.0, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3))


class RandomShift(Defence):
    """Adds one random constant per call (drawn from the seeded generator)."""

    name = "random-shift"
    random = True

    def forward(self, x, generator):
        return x + 0.05 * torch.randn(1, generator=generator).to(x)


class Halve(Defence):
    name = "halve"

    def forward(self, x, generator):
        return x * 0.5


@pytest.fixture
def images():
    x = photo_tensor("coffee", (32, 32)) * 0.5 + 0.25  # mid-range: the clamp never bites
    return x, (x + 0.03).clamp(0, 1)


def test_mean_and_std_are_those_of_n_manual_calls(images):
    x, xa = images
    m, d = Brightness(), RandomShift()
    r = eot_scores(m, d, x, xa, seed=11, n=6)
    manual = torch.stack([m.score(d(xa, seed=draw_seed(11, k))) for k in range(6)])
    assert r["draws"] == 6 and len(set(r["seeds"])) == 6
    assert torch.allclose(r["defended-attacked"], manual)
    assert torch.allclose(r["defended-attacked_mean"], manual.mean(0))
    assert torch.allclose(r["defended-attacked_std"], manual.std(0, correction=0))
    assert r["defended-clear_std"][0] > 0


def test_clean_and_attacked_get_the_same_draw(images):
    x, xa = images
    r = eot_scores(Brightness(), RandomShift(), x, xa, seed=3, n=5)
    # the random shift cancels in M(D(x)) − M(D(x_a)) only if both got the same draw
    gain = r["both_defended_abs_gain"]
    expected = (Brightness().score(x) - Brightness().score(xa)).abs() / 2.0
    assert torch.allclose(gain, expected.expand_as(gain), atol=1e-6)
    assert float(r["both_defended_abs_gain_std"][0]) < 1e-6 < float(r["defended-clear_std"][0])


def test_one_draw_is_the_ordinary_evaluation(images):
    x, xa = images
    m, d = Brightness(), RandomShift()
    r = eot_scores(m, d, x, xa, seed=42, n=1)
    assert torch.equal(r["defended-clear_mean"], m.score(d(x, seed=42)))
    assert float(r["defended-clear_std"][0]) == 0.0


def test_deterministic_defence_is_drawn_once(images):
    x, xa = images
    r = eot_scores(Brightness(), Halve(), x, xa, seed=0, n=8)
    assert r["draws"] == 1 and r["defended-attacked"].shape == (1, 1)
    with pytest.raises(ValueError, match="at least one draw"):
        eot_scores(Brightness(), RandomShift(), x, xa, seed=0, n=0)
