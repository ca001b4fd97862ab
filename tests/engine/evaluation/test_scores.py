"""Every score formula on hand-made numbers (engine/evaluation/scores.py)."""
import math

import pytest
import torch

from engine.evaluation import scores as S
from engine.evaluation.pairs import PSNR_CAP_DB, compare, linf, mae, mse, psnr, ssim
from engine.evaluation.columns import PAIR_COLUMNS
from engine.evaluation.row import evaluate_pair


def test_abs_and_rel_gain():
    assert S.abs_gain(50.0, 60.0, 20.0) == pytest.approx(0.5)
    assert S.abs_gain(60.0, 50.0, 20.0) == pytest.approx(0.5)
    assert S.rel_gain(40.0, 50.0) == pytest.approx(10 / (40 + 1e-6))
    # negative clean scores (BRISQUE) still give a non-negative relative gain
    assert S.rel_gain(-10.0, -30.0) == pytest.approx(20 / (10 + 1e-6))


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


def test_pair_measures_on_known_images():
    a = torch.zeros(1, 3, 32, 32)
    b = torch.full((1, 3, 32, 32), 0.1)
    assert mse(a, b).item() == pytest.approx(0.01)
    assert mae(a, b).item() == pytest.approx(0.1)
    assert linf(a, b).item() == pytest.approx(0.1)
    assert psnr(a, b).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(a, a).item() == PSNR_CAP_DB
    assert S.quality_score(ssim(a, a).item(), psnr(a, a).item()) == pytest.approx(1.0, abs=1e-4)
    assert ssim(b, b).item() == pytest.approx(1.0, abs=1e-5)
    noisy = (b + 0.05 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert ssim(b, noisy).item() < 0.9


def test_pairs_of_different_sizes_are_aligned():
    a = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    small = a[..., :20, :20]
    m = compare(a, small)
    assert set(m) == {"ssim", "mse", "psnr", "l_inf", "mae"}
    assert all(math.isfinite(v) for v in m.values())


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
