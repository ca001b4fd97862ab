"""Every score formula on hand-made numbers (engine/evaluation/scores.py)."""
import math

import pytest
import torch

from engine.evaluation import scores as S
from engine.evaluation.pairs import PSNR_CAP_DB, compare, linf, mae, mse, psnr, ssim
from engine.evaluation.columns import PAIR_COLUMNS
from engine.evaluation.row import evaluate_pair
from tests.conftest import photo_tensor


def test_abs_and_rel_gain():
    assert S.abs_gain(50.0, 60.0, 20.0) == pytest.approx(0.5)
    assert S.abs_gain(60.0, 50.0, 20.0) == pytest.approx(0.5)
    assert S.rel_gain(40.0, 50.0) == pytest.approx(10 / (40 + 1e-6))
    # negative clean scores (BRISQUE) still give a non-negative relative gain
    assert S.rel_gain(-10.0, -30.0) == pytest.approx(20 / (10 + 1e-6))
    # a zero clean score: the 1e-6 keeps the gain finite and positive
    assert S.rel_gain(0.0, 1.0) == pytest.approx(1e6)


def test_mrb_normalised_gains_are_signed():
    assert S.normalised_abs_gain(0.2, 0.5) == pytest.approx(0.3)
    assert S.normalised_abs_gain(0.5, 0.2) == pytest.approx(-0.3)
    assert S.normalised_rel_gain(0.2, 0.5) == pytest.approx(0.3 / (0.2 + 1e-6))
    assert S.normalised_rel_gain(0.5, 0.2) == pytest.approx(-0.3 / (0.5 + 1e-6))
    assert S.normalised_rel_gain(0.0, 0.5) == pytest.approx(0.5e6)


def test_quality_and_similarity():
    assert S.quality_score(0.9, 40.0) == pytest.approx((0.9 + 0.5) / 2)
    assert S.similarity_score(0.9, 40.0) == pytest.approx(1.9)


def test_scaling_respects_lower_is_better_bounds():
    niqe = (28.74, 1.414)  # worst, best
    assert S.scaled(28.74, niqe) == pytest.approx(0.0)
    assert S.scaled(1.414, niqe) == pytest.approx(1.0)
    assert S.scaled(15.077, niqe) == pytest.approx(0.5)


def test_robustness_term():
    bounds = (0.0, 100.0)
    # s = 0.8, s' = 0.9: log10(0.8 / 0.1)
    assert S.robustness_term(80.0, 90.0, bounds) == pytest.approx(math.log10(0.8 / (0.1 + 1e-6)))
    # a bigger change is less robust
    assert S.robustness_term(80.0, 99.0, bounds) < S.robustness_term(80.0, 90.0, bounds)
    # max(1 - s, s) uses the larger side
    assert S.robustness_term(20.0, 30.0, bounds) == pytest.approx(math.log10(0.8 / (0.1 + 1e-6)))


def test_gain_removed_and_attack_gained():
    assert S.gain_removed(0.1, 0.4) == pytest.approx(0.75)
    assert math.isnan(S.gain_removed(0.1, 0.0))
    assert S.attack_gained(10.0, 8.0, lower_better=True)
    assert not S.attack_gained(10.0, 8.0, lower_better=False)
    assert S.attack_gained(8.0, 10.0, lower_better=False)
    assert not S.attack_gained(8.0, 10.0, lower_better=True)
    # any move counts, however small; no move is no gain
    assert S.attack_gained(10.0, 9.5, lower_better=True) and S.attack_gained(9.5, 10.0, lower_better=False)
    assert not S.attack_gained(10.0, 10.0, lower_better=True)
    assert not S.attack_gained(10.0, 10.0, lower_better=False)


def test_pair_measures_on_known_images():
    a = torch.zeros(1, 3, 32, 32)
    b = torch.full((1, 3, 32, 32), 0.1)
    assert mse(a, b).item() == pytest.approx(0.01)
    assert mae(a, b).item() == pytest.approx(0.1)
    assert linf(a, b).item() == pytest.approx(0.1)
    assert psnr(a, b).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(a, a).item() == PSNR_CAP_DB
    assert S.quality_score(ssim(a, a).item(), psnr(a, a).item()) == pytest.approx(1.0, abs=1e-4)
    assert ssim(b, b).item() == 1.0  # exactly (kornia alone gives 1 − ~1e-6 on a flat image)
    noisy = (b + 0.05 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert ssim(b, noisy).item() < 0.9


def test_pairs_of_different_sizes_are_aligned():
    """A 24×40 ramp along the width against its 2×2 block average (12×20), a known answer:
    bilinear upsampling at pixel centres rebuilds a linear ramp exactly except in the first
    and last column, where the sample clamps to the edge and is off by half a step (½/39)."""
    a = (torch.arange(40, dtype=torch.float32) / 39).expand(1, 3, 24, 40).clone()
    small = torch.nn.functional.avg_pool2d(a, 2)
    m = compare(a, small)
    assert set(m) == {"ssim", "mse", "psnr", "l_inf", "mae"}
    err = 0.5 / 39
    assert m["l_inf"] == pytest.approx(err, rel=1e-4)
    assert m["mae"] == pytest.approx(2 * err / 40, rel=1e-4)
    assert m["mse"] == pytest.approx(2 * err ** 2 / 40, rel=1e-4)
    assert m["psnr"] == pytest.approx(10 * math.log10(40 / (2 * err ** 2)), rel=1e-5)
    assert 0.99 < m["ssim"] < 1.0


def test_evaluate_pair_assembles_every_column():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=g)
    xa = (x + 0.02).clamp(0, 1)
    row = evaluate_pair(clean=50.0, attacked=70.0, defended_clean=48.0, defended_attacked=55.0,
                        images={"x": x, "xa": xa, "dx": x, "dxa": xa}, bounds=(0.0, 100.0),
                        score_range=100.0, geometric=False)
    for c in PAIR_COLUMNS:
        assert c in row
    assert row["robust_abs_gain"] == pytest.approx(0.05)
    assert row["nonpurified_abs_gain"] == pytest.approx(0.20)
    assert row["both_defended_abs_gain"] == pytest.approx(0.07)
    assert row["gain_removed"] == pytest.approx(0.75)
    assert row["l_inf_clear_attacked"] == pytest.approx(0.02, abs=1e-6)
    assert math.isnan(row["geometry_aware_quality"])
    assert row["quality_score"] == pytest.approx(S.quality_score(row["ssim_clear_defended-attacked"],
                                                                 row["psnr_clear_defended-attacked"]))


def test_geometry_aware_quality_compares_the_two_defended_images():
    """A geometric defence (a 16×24 crop of a 24×40 photo, the same window for x and x_a):
    the geometry-aware quality is the quality of D(x) against D(x_a), which only differ by
    the attack's noise, while every pair with an un-cropped image is misaligned and scores
    far lower. Each pair's quality is derived here from the pair measures directly."""
    x = photo_tensor("astronaut", (24, 40))
    g = torch.Generator().manual_seed(0)
    noise = 0.02 * torch.randn(x.shape, generator=g)
    outside = torch.ones_like(x, dtype=torch.bool)
    outside[..., 4:20, 8:32] = False
    # stronger noise where the crop does not look, so x against x_a is no stand-in either
    noise = torch.where(outside, noise + 0.15 * torch.randn(x.shape, generator=g), noise)
    xa = (x + noise).clamp(0, 1)
    dx, dxa = x[..., 4:20, 8:32], xa[..., 4:20, 8:32]
    row = evaluate_pair(clean=50.0, attacked=70.0, defended_clean=48.0, defended_attacked=55.0,
                        images={"x": x, "xa": xa, "dx": dx, "dxa": dxa}, bounds=(0.0, 100.0),
                        score_range=100.0, geometric=True)

    def q(a, b):
        return S.quality_score(ssim(a, b).item(), psnr(a, b).item())

    expected = q(dx, dxa)
    assert row["geometry_aware_quality"] == pytest.approx(expected, rel=1e-6)
    assert row["ssim_defended-clear_defended-attacked"] == pytest.approx(ssim(dx, dxa).item(), rel=1e-6)
    # every other pair is clearly worse: a wrong pair cannot pass for the right one
    for wrong in (q(x, dxa), q(x, dx), q(xa, dxa), q(x, xa)):
        assert abs(wrong - expected) > 0.05, (wrong, expected)
    assert row["quality_score"] == pytest.approx(q(x, dxa), rel=1e-6)
    assert row["quality_score_clear"] == pytest.approx(q(x, dx), rel=1e-6)
    assert row["quality_score"] < expected - 0.1
