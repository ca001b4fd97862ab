"""Wasserstein and energy distances against scipy, their sign, and their bootstrap."""
import numpy as np
import pytest
import scipy.stats as st

from engine.evaluation.distribution import distances, group_scores, signed_distances


@pytest.mark.parametrize("a,b", [([0.1, 0.4, 0.4, 0.9], [0.3, 0.35, 1.2]),
                                 ([0.0, 0.0, 1.0], [0.5]), ([0.2, 0.6, 0.7, 0.75, 0.9], [0.1, 0.15, 0.8])])
def test_distances_match_scipy(a, b):
    w1, en = distances(a, b)
    assert w1[0] == pytest.approx(st.wasserstein_distance(a, b), abs=1e-12)
    assert en[0] == pytest.approx(st.energy_distance(a, b), abs=1e-12)


def test_weighted_distances_match_scipy():
    a, b = [0.1, 0.4, 0.4, 0.9], [0.3, 0.35, 1.2]
    wa, wb = np.array([1, 2, 0, 1.0]), np.array([3, 1, 1.0])
    w1, en = distances(a, b, wa, wb)
    assert w1[0] == pytest.approx(st.wasserstein_distance(a, b, wa, wb))
    assert en[0] == pytest.approx(st.energy_distance(a, b, wa, wb))


def test_sign_follows_the_shift():
    up, _ = signed_distances([0.2, 0.3], [0.6, 0.8])
    down, _ = signed_distances([0.6, 0.8], [0.2, 0.3])
    assert up[0] == pytest.approx(0.45) and down[0] == pytest.approx(-0.45)


def _rows(clean, attacked):
    return [{"image_name": f"i{i}", "norm_clear": c, "norm_defended-attacked": a, "clear": c * 10,
             "defended-clear": c * 10 + (i % 2) * 0.1} for i, (c, a) in enumerate(zip(clean, attacked))]


def test_group_scores_interval_and_few_images():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.3, 0.6, 20)
    rows = _rows(clean, clean + 0.2)
    w, e, sr = group_scores(rows, seed=1)
    assert w["score"] == "wasserstein" and w["value"] == pytest.approx(0.2)
    assert w["ci_low"] <= w["value"] <= w["ci_high"] and w["ci_low"] > 0
    assert e["value"] == pytest.approx(st.energy_distance(clean, clean + 0.2))
    assert sr["value"] == pytest.approx(st.spearmanr([r["clear"] for r in rows],
                                                     [r["defended-clear"] for r in rows])[0])
    few = group_scores(rows[:2], seed=1)
    assert few[0]["ci_low"] is None and "fewer than 3" in few[0]["ci_note"]
