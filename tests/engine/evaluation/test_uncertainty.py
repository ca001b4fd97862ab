"""Intervals: bootstrap coverage on synthetic data, the t-interval against scipy, few images."""
import numpy as np
import pytest
import scipy.stats as st

from engine.evaluation.uncertainty import (
    NOTE_FEW,
    bootstrap_mean,
    cluster_bootstrap,
    mean_intervals,
    t_interval,
)


def test_bootstrap_covers_true_mean_at_about_the_stated_rate():
    rng = np.random.default_rng(123)
    true_mean, trials, n = 0.3, 400, 40
    data = rng.gamma(2.0, true_mean / 2.0, size=(trials, n))  # skewed, mean 0.3
    hits = 0
    for i, x in enumerate(data):
        lo, hi = bootstrap_mean(x, seed=i, n_boot=1000)
        hits += lo <= true_mean <= hi
    assert 0.90 <= hits / trials <= 0.98


def test_bootstrap_too_narrow_level_covers_less():
    rng = np.random.default_rng(5)
    data = rng.normal(1.0, 1.0, size=(300, 30))
    cover = [np.mean([lo <= 1.0 <= hi for lo, hi in (bootstrap_mean(x, i, n_boot=500, level=lvl)
                                                        for i, x in enumerate(data))]) for lvl in (0.5, 0.95)]
    assert 0.40 <= cover[0] <= 0.60 and cover[1] > 0.88


def test_t_interval_matches_scipy():
    x = [0.12, 0.5, 0.33, 0.41, 0.05, 0.27, 0.3]
    lo, hi = t_interval(x)
    ref = st.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=st.sem(x))
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)


def test_cluster_bootstrap_resamples_images_not_rows():
    # two images, each with many identical rows: the mean can only be one of 3 values
    sums = np.array([[10.0 * 0.0], [10.0 * 1.0]])
    counts = np.array([[10.0], [10.0]])
    lo, hi = cluster_bootstrap(sums, counts, seed=0)
    assert lo[0] == 0.0 and hi[0] == 1.0


def test_fewer_than_three_images_give_no_interval_and_say_so():
    clusters = [np.array([[0.1, 1.0]]), np.array([[0.3, np.nan]])]
    a, b = mean_intervals(clusters, seed=0)
    assert a.mean == pytest.approx(0.2) and a.low is None and a.high is None and a.note == NOTE_FEW
    assert b.mean == 1.0 and b.n == 1 and b.low is None
    three = mean_intervals(clusters + [np.array([[0.5, 2.0]])], seed=0, method="t")
    assert three[0].low < 0.3 < three[0].high and three[1].low is None  # score 2 has 2 images


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="bootstrap, t"):
        mean_intervals([np.zeros((1, 1))], 0, method="bca")
