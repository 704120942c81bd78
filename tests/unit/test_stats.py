import math

import numpy as np
import pytest

from harness.metrics.stats import bootstrap_ci


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
    from harness.metrics.stats import paired_bootstrap_ci

    rng = np.random.default_rng(2)
    base = rng.random(300)
    assert paired_bootstrap_ci(base, base + 0.1) == pytest.approx((0.1, 0.1, 0.1))
    delta, low, high = paired_bootstrap_ci(base, base)
    assert (delta, low, high) == (0.0, 0.0, 0.0)


def test_paired_interval_is_narrower_than_an_unpaired_one_on_correlated_scores():
    from harness.metrics.stats import paired_bootstrap_ci

    rng = np.random.default_rng(3)
    base = rng.random(400)
    other = base + rng.normal(0.02, 0.01, 400)
    delta, low, high = paired_bootstrap_ci(base, other)
    assert 0 < low < delta < high  # a small, consistent gain is detected despite large per-item spread
    unpaired = np.subtract(bootstrap_ci(other), bootstrap_ci(base)[::-1])
    assert high - low < unpaired[1] - unpaired[0]
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0], [1.0, 2.0])


# ----------------------------------------------------------------------------------------------------
# McNemar's exact test


def _pairs(only_baseline: int, only_other: int, both: int = 0, neither: int = 0) -> tuple[list[int], list[int]]:
    """Paired 0/1 scores with the given numbers of discordant (and concordant) items."""
    baseline = [1] * only_baseline + [0] * only_other + [1] * both + [0] * neither
    other = [0] * only_baseline + [1] * only_other + [1] * both + [0] * neither
    return baseline, other


def test_mcnemar_by_hand():
    from harness.metrics.stats import mcnemar_exact

    # b = 1, c = 9: n = 10, P[X <= 1] = (C(10,0) + C(10,1)) / 2**10 = (1 + 10) / 1024,
    # p = 2 * 11 / 1024 = 22 / 1024 = 0.021484375 (exact in binary).
    assert mcnemar_exact(*_pairs(1, 9)) == 0.021484375
    # b = 2, c = 8: P[X <= 2] = (1 + 10 + 45) / 1024, p = 112 / 1024 = 0.109375.
    assert mcnemar_exact(*_pairs(2, 8)) == 0.109375
    # b = 0, c = 5: P[X <= 0] = 1 / 32, p = 2 / 32 = 0.0625.
    assert mcnemar_exact(*_pairs(0, 5)) == 0.0625
    # b = c: P[X <= n/2] >= 1/2, so 2 * tail >= 1 -> capped at 1.
    assert mcnemar_exact(*_pairs(7, 7)) == 1.0
    # b = 0, c = 1: P[X <= 0] = 1/2 exactly, p = 1.
    assert mcnemar_exact(*_pairs(0, 1)) == 1.0
    # No discordant pairs at all: p = 1.
    assert mcnemar_exact(*_pairs(0, 0, both=5, neither=3)) == 1.0


def test_mcnemar_ignores_concordant_pairs_and_order():
    from harness.metrics.stats import mcnemar_exact

    p = mcnemar_exact(*_pairs(3, 12))
    assert mcnemar_exact(*_pairs(3, 12, both=1000, neither=500)) == p
    assert mcnemar_exact(*_pairs(12, 3)) == p  # two-sided: swapping the systems changes nothing
    baseline, other = _pairs(3, 12, both=4, neither=6)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(baseline))
    assert mcnemar_exact([baseline[i] for i in order], [other[i] for i in order]) == p
    assert mcnemar_exact(np.array(baseline, dtype=bool), np.array(other, dtype=bool)) == p


def test_mcnemar_is_exact_far_in_the_tail_and_for_large_n():
    from harness.metrics.stats import mcnemar_exact

    # b = 1000, c = 0: p = 2 * 2**-1000 = 2**-999, exactly representable.
    assert mcnemar_exact(*_pairs(1000, 0)) == 2.0**-999
    # b = 100,000, c = 0: p = 2**-99,999, far below the smallest float: 0.0, without overflow.
    assert mcnemar_exact(*_pairs(100_000, 0)) == 0.0
    # n = 100,000 near the middle: close to the continuity-corrected normal approximation,
    # z = (|b - c| - 1) / sqrt(n) = 199 / 316.2..., p = erfc(z / sqrt 2) = 0.5291...
    p = mcnemar_exact(*_pairs(50_100, 49_900))
    assert p == pytest.approx(math.erfc(199 / math.sqrt(100_000) / math.sqrt(2)), abs=2e-3)
    assert 0 < mcnemar_exact(*_pairs(50_500, 49_500)) < p < mcnemar_exact(*_pairs(50_050, 49_950)) < 1


def test_binomial_tail_for_large_n_agrees_with_exact_integers():
    from harness.metrics.stats import _MCNEMAR_EXACT_INTEGER_MAX_N, _binomial_half_lower_tail

    def exact(n: int, k: int) -> float:  # sum of C(n, i), i <= k, in integers; one rounding at the end
        term = total = 1
        for i in range(k):
            term = term * (n - i) // (i + 1)  # C(n, i + 1)
            total += term
        return total / (1 << n)

    n = _MCNEMAR_EXACT_INTEGER_MAX_N + 1  # the first n computed from the largest term and ratios
    for k in (0, 1, 50, 9_000, 9_800, 9_990, 10_000 - 1):
        assert _binomial_half_lower_tail(n, k) == pytest.approx(exact(n, k), rel=1e-12, abs=0.0), k
    assert _binomial_half_lower_tail(n - 1, 9_800) == pytest.approx(exact(n - 1, 9_800), rel=1e-15)


def test_mcnemar_rejects_what_it_cannot_test():
    from harness.metrics.stats import mcnemar_exact

    with pytest.raises(ValueError):
        mcnemar_exact([1, 0.3], [1, 0])
    with pytest.raises(ValueError):
        mcnemar_exact([1, 0], [1])
    with pytest.raises(ValueError):
        mcnemar_exact([], [])


# ----------------------------------------------------------------------------------------------------
# Sign-flip permutation test


def test_permutation_exact_enumeration_by_hand():
    from harness.metrics.stats import paired_permutation_p

    # d = [1, 1, 1, 1]: of the 2**4 = 16 sign patterns only ++++ and ---- reach |sum| >= 4: p = 2/16.
    assert paired_permutation_p([0, 0, 0, 0], [1, 1, 1, 1]) == 0.125
    # Items with a zero difference drop out: the same four, plus two ties.
    assert paired_permutation_p([0, 0, 0, 0, 0.5, 0.3], [1, 1, 1, 1, 0.5, 0.3]) == 0.125
    # d = [0.3, 0.3, 0.6, -0.3] (VQA-like), observed |sum| = 0.9. With t = s1 + s2 + s4 (three 0.3's)
    # and s3 on 0.6, sum = 0.3 t + 0.6 s3. s3 = +1: t = 3, 1 (1 + 3 patterns) give 1.5, 0.9;
    # s3 = -1: t = -1, -3 (3 + 1) give -0.9, -1.5. So 8 of 16 reach 0.9: p = 0.5 (0.3 + 0.6 and
    # 0.9 differ in the last bit as floats and still count as ties).
    assert paired_permutation_p([0.6, 0.3, 0.0, 0.9], [0.9, 0.6, 0.6, 0.6]) == 0.5
    # d = [2, -1]: patterns give |2 - 1| = 1 twice and |2 + 1| = 3 twice; observed 1: p = 4/4.
    assert paired_permutation_p([0, 1], [2, 0]) == 1.0
    assert paired_permutation_p([0.2, 0.4], [0.2, 0.4]) == 1.0  # no differences at all


def test_permutation_monte_carlo_estimator():
    from harness.metrics.stats import paired_permutation_p

    # 1,000 equal gains: a random flip essentially never reaches |sum| = 1000, so count = 0 and
    # p = (0 + 1) / (resamples + 1), never 0.
    assert paired_permutation_p([0.0] * 1000, [0.6] * 1000) == 1 / 10_001
    assert paired_permutation_p([0.0] * 1000, [0.6] * 1000, resamples=99) == 1 / 100


def _exact_sign_flip_p(diff: np.ndarray) -> float:
    diff = diff[diff != 0]
    m = len(diff)
    signs = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2.0 - 1.0
    return float(np.mean(np.abs(signs @ np.abs(diff)) >= abs(diff.sum()) - 1e-9))


@pytest.mark.parametrize("kind", ["vqa", "continuous", "mixed"])
def test_permutation_monte_carlo_agrees_with_exact_enumeration(kind):
    from harness.metrics.stats import paired_permutation_p

    rng = np.random.default_rng({"vqa": 1, "continuous": 2, "mixed": 3}[kind])
    n = 18  # 2**18 patterns, enumerated here directly; the function samples above 16
    if kind == "vqa":
        base, other = rng.choice([0, 0.3, 0.6, 0.9, 1.0], n), rng.choice([0, 0.3, 0.6, 0.9, 1.0], n)
        other[base == other] += 0.3  # no zero differences: all 18 count
    elif kind == "continuous":
        base, other = rng.random(n), rng.random(n) + 0.15
    else:
        base, other = rng.random(n), rng.random(n)
        other[:9] = base[:9] + rng.choice([0.3, -0.3, 0.6], 9)  # repeated magnitudes and unique ones
    exact = _exact_sign_flip_p(other - base)
    estimate = paired_permutation_p(base, other, resamples=20_000, seed=4)
    assert estimate == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 20_000) + 1e-4)


def test_permutation_is_reproducible_and_symmetric():
    from harness.metrics.stats import paired_permutation_p

    rng = np.random.default_rng(5)
    base = rng.random(500) * 2
    other = base + rng.normal(0.02, 0.3, 500)  # CIDEr-like: continuous, a small noisy gain
    p = paired_permutation_p(base, other, seed=7)
    assert paired_permutation_p(base, other, seed=7) == p
    assert paired_permutation_p(other, base, seed=7) == p  # two-sided
    assert paired_permutation_p(base, other, seed=8) != p  # another stream, another estimate ...
    assert paired_permutation_p(base, other, seed=8) == pytest.approx(p, abs=0.03)  # ... of the same p
    # A clear gain is detected; pure noise is not.
    assert paired_permutation_p(base, base + rng.normal(0.1, 0.3, 500)) < 1e-3
    assert paired_permutation_p(base, base + rng.normal(0.0, 0.3, 500)) > 0.01
    with pytest.raises(ValueError):
        paired_permutation_p([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_permutation_p([1.0, math.nan], [1.0, 2.0])


def test_paired_p_value_picks_the_test():
    from harness.metrics.stats import mcnemar_exact, paired_p_value, paired_permutation_p

    baseline, other = _pairs(1, 9, both=3)
    assert paired_p_value(baseline, other) == (mcnemar_exact(baseline, other), "mcnemar_exact")
    assert paired_p_value([True, False], [True, True]) == (1.0, "mcnemar_exact")
    vqa_base, vqa_other = [0, 0.3, 0.6, 1.0, 0.9], [1.0, 0.6, 0.6, 1.0, 1.0]
    assert paired_p_value(vqa_base, vqa_other) == (paired_permutation_p(vqa_base, vqa_other), "paired_permutation")
    assert paired_p_value([0.5, 1.5], [1.0, 2.5]) == (
        paired_permutation_p([0.5, 1.5], [1.0, 2.5]),
        "paired_permutation",
    )


# ----------------------------------------------------------------------------------------------------
# Holm-Bonferroni


def test_holm_by_hand():
    from harness.metrics.stats import holm

    # Sorted: 0.005, 0.01, 0.03, 0.04 (m = 4), times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04;
    # running maximum: 0.02, 0.03, 0.06, 0.06. Back in the input order:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    # Capped at 1: 0.5 * 2 = 1.0, then max(1.0, 0.6 * 1) = 1.0.
    assert holm([0.6, 0.5]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2]
    assert holm([]) == []
    # Ties: sorted 0.01, 0.01, 0.02 times 3, 2, 1: 0.03, 0.02, 0.02; running maximum 0.03 for all three.
    assert holm([0.02, 0.01, 0.01]) == pytest.approx([0.03, 0.03, 0.03], abs=1e-15)


def test_holm_is_monotone_capped_and_at_least_the_raw_p():
    from harness.metrics.stats import holm

    rng = np.random.default_rng(6)
    for _ in range(50):
        raw = rng.random(rng.integers(1, 12)) ** 3
        adjusted = holm(raw.tolist())
        assert all(a >= r for a, r in zip(adjusted, raw))
        assert max(adjusted) <= 1.0
        order = np.argsort(raw)
        assert np.all(np.diff(np.asarray(adjusted)[order]) >= 0)  # same order as the raw p-values
        assert min(adjusted) == pytest.approx(min(1.0, len(raw) * raw.min()))  # the smallest: Bonferroni
    with pytest.raises(ValueError):
        holm([0.5, 1.5])
    with pytest.raises(ValueError):
        holm([math.nan])


# ----------------------------------------------------------------------------------------------------
# Two-level (seed, item) bootstrap


def test_two_level_bootstrap_with_one_seed_is_the_item_bootstrap():
    from harness.metrics.stats import two_level_bootstrap_ci

    rng = np.random.default_rng(7)
    scores = rng.random(300)
    low, high = two_level_bootstrap_ci([scores])
    assert low < scores.mean() < high
    assert (low, high) == pytest.approx(bootstrap_ci(scores), abs=0.01)  # (today even the same stream)
    discrete = rng.choice([0, 0.3, 0.6, 0.9, 1.0], 2000)  # few distinct values: the multinomial route
    assert two_level_bootstrap_ci([discrete], resamples=4000) == pytest.approx(
        bootstrap_ci(discrete, resamples=4000), abs=0.005
    )
    assert two_level_bootstrap_ci([[0.4] * 30]) == (0.4, 0.4)


def test_two_level_bootstrap_widens_when_seeds_disagree():
    from harness.metrics.stats import two_level_bootstrap_ci

    rng = np.random.default_rng(8)
    agree = [rng.random(400) for _ in range(4)]
    disagree = [values * 0.5 + offset for values, offset in zip(agree, (0.0, 0.15, 0.3, 0.45))]
    low, high = two_level_bootstrap_ci(agree)
    item_low, item_high = bootstrap_ci(np.concatenate(agree))
    # Seeds alike: near the item interval, somewhat wider (by up to sqrt(2): the item noise in the seed
    # means is counted at both levels; conservative).
    assert item_high - item_low < high - low < 1.6 * (item_high - item_low)
    low, high = two_level_bootstrap_ci(disagree)
    item_low, item_high = bootstrap_ci(np.concatenate(disagree))
    assert high - low > 5 * (item_high - item_low)  # the seed-to-seed spread now dominates
    assert low < np.mean([v.mean() for v in disagree]) < high


def test_two_level_bootstrap_is_reproducible_and_takes_ragged_seeds():
    from harness.metrics.stats import two_level_bootstrap_ci

    rng = np.random.default_rng(9)
    seeds = [rng.random(50), rng.random(80), rng.random(20)]
    assert two_level_bootstrap_ci(seeds, seed=3) == two_level_bootstrap_ci(seeds, seed=3)
    assert two_level_bootstrap_ci(seeds, seed=3) != two_level_bootstrap_ci(seeds, seed=4)
    low, high = two_level_bootstrap_ci(seeds, confidence=0.5)
    wide_low, wide_high = two_level_bootstrap_ci(seeds, confidence=0.99)
    assert wide_low < low < high < wide_high
    with pytest.raises(ValueError):
        two_level_bootstrap_ci([])
    with pytest.raises(ValueError):
        two_level_bootstrap_ci([[0.5], []])
    with pytest.raises(ValueError):
        two_level_bootstrap_ci([[0.5, math.inf]])


def test_paired_two_level_bootstrap_by_hand():
    from harness.metrics.stats import paired_two_level_bootstrap_ci

    # Seed means 0.1 and 0.3, no spread within a seed: a resample's grand mean is 0.1, 0.2 or 0.3 with
    # probability 1/4, 1/2, 1/4 (which seeds were drawn), so the 95% interval is [0.1, 0.3] and the
    # mean (of seed means, not of all 30 items) is 0.2.
    mean, low, high = paired_two_level_bootstrap_ci([[0.1] * 10, [0.3] * 20])
    assert mean == pytest.approx(0.2) and low == pytest.approx(0.1) and high == pytest.approx(0.3)
    rng = np.random.default_rng(10)
    diffs = [rng.normal(0.05, 0.2, 300) for _ in range(3)]
    mean, low, high = paired_two_level_bootstrap_ci(diffs, seed=1)
    assert low < mean < high
    assert paired_two_level_bootstrap_ci(diffs, seed=1) == (mean, low, high)


# ----------------------------------------------------------------------------------------------------
# Clusters of draws, seeds by identity, detectable effects, power


def test_the_draws_of_one_item_are_one_cluster():
    from harness.metrics.stats import clustered_bootstrap_ci, seed_of

    rng = np.random.default_rng(3)
    one = {("0/0", f"q{i}"): float(v) for i, v in enumerate(rng.integers(0, 2, 60))}
    copied = {**one, **{("0/1", item): value for (_, item), value in one.items()}}  # a second draw, identical
    seed = seed_of("a cell")
    assert clustered_bootstrap_ci(copied, seed=seed) == pytest.approx(clustered_bootstrap_ci(one, seed=seed))
    # As many independent items would give a narrower interval: the copies add no information.
    many = {("0/0", f"q{i}"): v for i, v in enumerate(list(one.values()) * 2)}
    _, low, high = clustered_bootstrap_ci(many, seed=seed)
    _, c_low, c_high = clustered_bootstrap_ci(copied, seed=seed)
    assert high - low < 0.8 * (c_high - c_low)


def test_a_cluster_bootstraps_mean_is_the_mean_of_seed_means_and_seeds_may_hold_other_items():
    from harness.metrics.stats import clustered_bootstrap_ci

    values = {("s0", "q0"): 1.0, ("s0", "q1"): 1.0, ("s0", "q2"): 1.0, ("s0", "q3"): 0.0, ("s1", "q0"): 0.0}
    mean, low, high = clustered_bootstrap_ci(values, resamples=500, seed=1)
    assert mean == pytest.approx((0.75 + 0.0) / 2) and 0.0 <= low <= high <= 1.0
    with pytest.raises(ValueError):
        clustered_bootstrap_ci({})


def test_seeds_come_from_identity_not_from_order():
    from harness.metrics.stats import seed_of

    assert seed_of("t", "mf", "real", 1, 100) == seed_of("t", "mf", "real", 1, 100)
    assert seed_of("t", "mf", "real", 1, 100) != seed_of("t", "mf", "black", 1, 100)


def test_a_p_at_the_permutation_floor_is_known_as_such():
    from harness.metrics.stats import PERMUTATION_RESAMPLES, at_floor, paired_p_value

    a, b = [0.0] * 40, [0.5] * 40  # every item better: no sign flip reaches the observed sum
    p, test = paired_p_value(a, b)
    assert test == "paired_permutation" and p == 1 / (PERMUTATION_RESAMPLES + 1) and at_floor(p, test)
    assert not at_floor(0.002, "paired_permutation") and not at_floor(1e-9, "mcnemar_exact")


def test_the_detectable_effect_shrinks_with_items_and_grows_with_spread():
    from harness.metrics.stats import detectable

    rng = np.random.default_rng(0)
    d = rng.choice([-1.0, 0.0, 1.0], size=100)
    assert detectable(d) == pytest.approx(2.8016 * d.std(ddof=1) / 10, rel=1e-3)
    assert detectable(np.tile(d, 4)) < detectable(d) and np.isnan(detectable([1.0]))


@pytest.mark.slow
@pytest.mark.parametrize(("effect", "base", "draws", "metric"), [(10, 50, 2, "binary"), (15, 30, 1, "vqa")])
def test_the_power_plan_holds_under_the_harness_own_test(effect, base, draws, metric):
    """The normal approximation's item count, simulated with the harness's own paired test on per-item means,
    detects the effect about 80% of the time (400 seeded tables: +-0.06 is three standard errors)."""
    from harness.metrics.power import items_needed, simulated_power

    n = items_needed(effect, base, draws, metric=metric)
    assert abs(simulated_power(n, effect, base, draws, metric=metric, simulations=400) - 0.8) < 0.06
    assert (
        items_needed(effect, base, 2 * draws, metric=metric) < n < items_needed(effect / 2, base, draws, metric=metric)
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--effect", "0", "--base", "50"], "--effect must be a positive number of points, got 0"),
        (["--effect", "-5", "--base", "50"], "--effect must be a positive number of points, got -5"),
        (["--effect", "5", "--base", "120"], "--base must be a score in points from 0 to below 100, got 120"),
        (["--effect", "60", "--base", "50"], "is above 100 points"),
        (["--effect", "5", "--base", "50", "--draws", "0"], "--draws must be 1 or more"),
        (["--effect", "5", "--base", "50", "--alpha", "1.5"], "--alpha must lie between 0 and 1 (exclusive), got 1.5"),
        (["--effect", "5", "--base", "50", "--power", "1"], "--power must lie between 0 and 1"),
        (["--effect", "5", "--base", "50", "--metric", "bleu"], "--metric must be one of binary, vqa, got 'bleu'"),
    ],
)
def test_power_bad_values_are_one_line_errors(capsys, args, says):
    from harness.cli.main import main

    assert main(["power", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and says in err, err


def test_power_prints_items_and_draws(capsys):
    from harness.cli.main import main
    from harness.metrics.power import items_needed

    assert main(["power", "--effect", "10", "--base", "50", "--draws", "2"]) == 0
    out = capsys.readouterr().out
    assert "draws per item (seeds)" in out and "simulated power" in out
    row = next(line for line in out.splitlines() if line.startswith("| 2 "))
    assert f"| {items_needed(10, 50, 2)} " in row
