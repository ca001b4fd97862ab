"""SMA: attacking a metric's correlation with MOS over a set (arXiv 2404.13277)."""
from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr

from engine.attacks.sma import find_targets, sma_attack, sma_rows, soft_rank
from tests.conftest import photo_tensor

EPS = 4 / 255


@pytest.fixture(scope="module")
def degraded_set():
    """Real photos degraded by Gaussian noise at known levels; the synthetic MOS falls with
    the level (80, 55, 30, + 2 per photo to break ties)."""
    g = torch.Generator().manual_seed(0)
    xs, mos, names = [], [], []
    for k, n in enumerate(("astronaut", "coffee", "chelsea", "rocket")):
        x = photo_tensor(n, (64, 64))
        for lvl, s in enumerate((0.0, 0.05, 0.1)):
            xs.append((x + s * torch.randn(x.shape, generator=g)).clamp(0, 1))
            mos.append(80.0 - 25 * lvl + 2 * k)
            names.append(f"{n}_{lvl}.png")
    return torch.cat(xs), mos, names


def test_soft_ranks_tend_to_the_ranks():
    t = torch.tensor([3.0, -1.0, 10.0, 0.5])
    assert torch.allclose(soft_rank(t, 1e-3), torch.tensor([3.0, 1.0, 4.0, 2.0]))


def test_targets_reverse_the_ranking_within_reach():
    good = torch.linspace(0, 10, 8)
    mos = torch.linspace(1, 5, 8)  # agrees with good: SROCC 1
    t = find_targets(good, mos, reach=10.0)
    assert float((t - good).abs().max()) <= 10.0 + 1e-5
    assert spearmanr(t.tolist(), mos.tolist())[0] < -0.5


def test_sma_lowers_srocc_with_mos_within_eps(brisque, degraded_set):
    x, mos, names = degraded_set
    r = sma_attack(x, mos, brisque, eps=EPS, iters=10)
    good = lambda s: (brisque.sign * s).tolist()  # noqa: E731
    # re-derived from the scores, not taken from the result
    before = spearmanr(good(brisque.score(x)), mos)[0]
    after = spearmanr(good(brisque.score(r.images)), mos)[0]
    assert before > 0.3  # measured 0.43: BRISQUE agrees with the noise levels before
    assert after < before - 0.5  # measured −0.50
    assert r.srocc_before == pytest.approx(before, abs=1e-6) and r.srocc_after == pytest.approx(after, abs=0.05)
    assert float((r.images - x).abs().max()) <= EPS + 1e-6
    assert 0.0 <= float(r.images.min()) and float(r.images.max()) <= 1.0
    assert bool((r.ssim > 0.8).all()) and bool((r.ssim <= 1.0).all())
    rows = sma_rows(r, names, mos)
    assert len(rows) == 12 and rows[0]["image_name"] == names[0]
    assert {"srocc_before", "srocc_after", "plcc_before", "plcc_after", "l_inf", "ssim"} <= set(rows[0])
    assert all(row["l_inf"] <= EPS + 1e-6 for row in rows)


def test_bad_input_gives_a_clear_error(brisque):
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="at least 3 images"):
        sma_attack(x, [1.0, 2.0], brisque)
    with pytest.raises(ValueError, match="one MOS each"):
        sma_attack(torch.rand(3, 3, 32, 32), [1.0, 2.0], brisque)
