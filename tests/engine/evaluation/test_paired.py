"""Paired defence comparisons: the difference, its interval and the verdict."""
import numpy as np
import pytest

from engine.evaluation.paired import paired_rows


def _rows(gains_a, gains_b, attack="ifgsm"):
    out = []
    for i, (ga, gb) in enumerate(zip(gains_a, gains_b)):
        for d, g in (("jpeg", ga), ("blur", gb)):
            out.append({"metric": "niqe", "attack": attack, "attack_preset": "default", "defence": d,
                        "defence_preset": "default", "image_name": f"{i}.png", "robust_abs_gain": g})
    return out


def test_paired_difference_is_read_with_confidence():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 30)  # large image-to-image spread, small consistent difference
    rows = _rows(base, base + 0.02 + rng.normal(0, 0.005, 30))
    (r, total) = paired_rows(rows)
    assert r["defence_a"] == "jpeg" and r["defence_b"] == "blur" and r["n"] == 30
    assert r["mean_diff"] == pytest.approx(-0.02, abs=0.003)
    assert r["ci_high"] < 0 and r["verdict"] == "A lower"
    assert total["attack"] == "total" and total["mean_diff"] == pytest.approx(r["mean_diff"])


def test_no_difference_and_few_images():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 20)
    noise = rng.normal(0, 0.01, 20)
    (r, _) = paired_rows(_rows(a, a + noise - noise.mean()))
    assert r["ci_low"] < 0 < r["ci_high"] and r["verdict"] == "no clear difference"
    (few, _) = paired_rows(_rows([0.1, 0.2], [0.3, 0.1]))
    assert few["verdict"] == "no interval" and few["mean_diff"] == pytest.approx(-0.05)


def test_only_items_both_defences_have_count():
    rows = _rows([0.1, 0.2, 0.3, 0.4], [0.2, 0.3, 0.4, float("nan")])
    rows = [r for r in rows if not (r["image_name"] == "0.png" and r["defence"] == "blur")]
    (r, _) = paired_rows(rows)
    assert r["n"] == 2 and r["mean_diff"] == pytest.approx(-0.1)
