"""Issue 4: on real photos attacked with I-FGSM against NIQE, JPEG, median blur and resize
take most of the attack's gain away. Directions only, no hard-coded numbers.

Three views of "gain left", means over the photos (NIQE: lower is better):
- robust_abs_gain |M(x) − M(D(x_a))| (MSU) — mixes what survives of the attack with what
  the defence itself does to NIQE (which punishes smoothing), so it is the weakest signal;
- the improvement the attacker keeps, sign·(M(D(x_a)) − M(x));
- both_defended |M(D(x)) − M(D(x_a))|: the attack's effect seen through the defence.
"""
from __future__ import annotations

import pytest
import torch

from engine.attacks.ifgsm import IFGSM
from engine.defences import DEFENCES
from engine.evaluation.scores import abs_gain
from tests.conftest import photo_tensor

SIDE = 128
PHOTOS = ("astronaut", "coffee", "chelsea")  # the photo_folder set; 3 keeps the test fast
DEFENCES_UNDER_TEST = ["jpeg", "median-blur", "resize"]  # MSU defaults: q 50, k 3, ×0.5


@pytest.fixture(scope="module")
def attacked(niqe):
    x = torch.cat([photo_tensor(n, (SIDE, SIDE)) for n in PHOTOS])
    x_adv = IFGSM(alpha=0.25 / 255)(x, niqe).image  # α 1/255 overshoots on NIQE
    return x, x_adv, niqe.score(x).double(), niqe.score(x_adv).double()


def _mean_abs_gain(niqe, a: torch.Tensor, b: torch.Tensor) -> float:
    return sum(abs_gain(float(u), float(v), niqe.range) for u, v in zip(a, b)) / len(a)


def _improvement(niqe, clean: torch.Tensor, other: torch.Tensor) -> float:
    """Mean move toward "better", in units of the metric's range."""
    return float((niqe.sign * (other - clean)).mean()) / niqe.range


def test_the_attack_gains_before_any_defence(niqe, attacked):
    x, x_adv, clean, adv = attacked
    assert (x_adv - x).abs().max() <= 10 / 255 + 1e-6
    assert _improvement(niqe, clean, adv) > 0
    assert _mean_abs_gain(niqe, clean, adv) > 0


@pytest.mark.parametrize("name", DEFENCES_UNDER_TEST)
def test_defence_removes_most_of_the_gain(name, niqe, attacked):
    x, x_adv, clean, adv = attacked
    d = DEFENCES.get(name)()
    with torch.no_grad():
        d_clean = niqe.score(d(x, seed=0)).double()
        d_adv = niqe.score(d(x_adv, seed=0)).double()
    undefended = _mean_abs_gain(niqe, clean, adv)
    # MSU's robust_abs_gain: below the undefended gain
    assert _mean_abs_gain(niqe, clean, d_adv) < undefended
    # the attacker keeps less of the improvement it had bought
    assert _improvement(niqe, clean, d_adv) < _improvement(niqe, clean, adv)
    # seen through the defence, the attack moves the score less than without it
    assert _mean_abs_gain(niqe, d_clean, d_adv) < undefended
