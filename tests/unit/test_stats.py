import numpy as np
import pytest

from harness.stats import bootstrap_ci


def test_constant_scores_have_a_zero_width_interval():
    assert bootstrap_ci([1.0] * 50) == (1.0, 1.0)
    assert bootstrap_ci([0.0] * 7) == (0.0, 0.0)


def test_interval_matches_the_normal_approximation_for_a_known_proportion():
    scores = [1.0] * 500 + [0.0] * 500  # p = 0.5, n = 1000: 1.96 * sqrt(.25 / 1000) = 0.031
    low, high = bootstrap_ci(scores, resamples=4000)
    assert low == pytest.approx(0.5 - 0.031, abs=0.005) and high == pytest.approx(0.5 + 0.031, abs=0.005)


def test_seeded_and_contains_the_mean():
    rng = np.random.default_rng(1)
    scores = rng.random(200).tolist()
    assert bootstrap_ci(scores) == bootstrap_ci(scores)
    low, high = bootstrap_ci(scores)
    assert low < float(np.mean(scores)) < high
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_paired_bootstrap_of_a_constant_shift_is_that_shift():
    from harness.stats import paired_bootstrap_ci

    rng = np.random.default_rng(2)
    base = rng.random(300)
    assert paired_bootstrap_ci(base, base + 0.1) == pytest.approx((0.1, 0.1, 0.1))
    delta, low, high = paired_bootstrap_ci(base, base)
    assert (delta, low, high) == (0.0, 0.0, 0.0)


def test_paired_interval_is_narrower_than_an_unpaired_one_on_correlated_scores():
    from harness.stats import paired_bootstrap_ci

    rng = np.random.default_rng(3)
    base = rng.random(400)
    other = base + rng.normal(0.02, 0.01, 400)
    delta, low, high = paired_bootstrap_ci(base, other)
    assert 0 < low < delta < high  # a small, consistent gain is detected despite large per-item spread
    unpaired = np.subtract(bootstrap_ci(other), bootstrap_ci(base)[::-1])
    assert high - low < unpaired[1] - unpaired[0]
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0], [1.0, 2.0])
