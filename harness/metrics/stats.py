"""Error bars and significance: percentile bootstrap confidence intervals of a mean score, exact and
permutation p-values for paired comparisons, Holm's correction for several of them at once.

numpy only (no scipy): the binomial tail and the permutation distributions are computed here.

Every random draw here takes a ``seed``; the results side seeds each cell by its identity (``seed_of``), so a
table regenerates digit for digit whatever order the runs were indexed in."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

# Random sign flips of the permutation test: its smallest p-value is 1 / (PERMUTATION_RESAMPLES + 1).
PERMUTATION_RESAMPLES = 10_000


# Below this many items no interval is shown ("n too small for an interval"): a bootstrap over one item gives the score
# itself as its interval ([100.0, 100.0]), and over a handful it takes only a few values and is far too narrow (five
# right answers out of five: [100.0, 100.0] again). Stored records keep their interval; tables print none.
MIN_ITEMS_FOR_CI = 10
NO_CI = "n too small for an interval"
NO_CI_WHY = (f"{NO_CI}: fewer than {MIN_ITEMS_FOR_CI} items, where a bootstrap interval says nothing about the "
             "spread (over one item it is the score itself)")  # fmt: skip
# A corpus metric (CIDEr) weighs each n-gram by how rare it is across all the images scored together (its IDF): on one
# image every weight is 0, so CIDEr is 0 whatever the captions; on a few it is still far from what it measures.
MIN_IMAGES_FOR_CORPUS = 10


def ci_shown(n_items) -> bool:
    """Whether a 95% CI over ``n_items`` items is printed (``MIN_ITEMS_FOR_CI`` or more)."""
    return n_items >= MIN_ITEMS_FOR_CI


def corpus_note(metric: str, n_images: int, where: str = "") -> str:
    """A line saying that a corpus metric over fewer than ``MIN_IMAGES_FOR_CORPUS`` images is not meaningful; ""
    from there up."""
    if n_images >= MIN_IMAGES_FOR_CORPUS:
        return ""
    return (f"{metric}{f' ({where})' if where else ''} over {n_images} image(s) is not meaningful: a corpus metric "
            "weighs words by how rare they are across the images scored (IDF), so on one image it is 0 by "
            f"construction; score at least {MIN_IMAGES_FOR_CORPUS} images")  # fmt: skip


def seed_of(*parts) -> int:
    """A seed from what identifies a cell (task, model fingerprint, images, shots, limit...): the same cell always
    draws the same resamples, whatever else the table holds and in whatever order its rows came."""
    text = json.dumps([str(p) for p in parts])
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def bootstrap_ci(
    scores: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """The ``confidence`` interval of the mean of ``scores`` (same units), resampling questions."""
    values = np.asarray(scores, dtype=np.float64)
    if len(values) == 0:
        raise ValueError("no scores")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def paired_bootstrap_ci(
    baseline: Sequence[float], other: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean difference other - baseline, low, high), resampling the same paired items for both."""
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError("paired scores must be non-empty and of equal length")
    diff = b - a
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(diff.mean()), float(low), float(high)


# ----------------------------------------------------------------------------------------------------
# Significance of paired comparisons (two systems scored on the same items)


def _paired_arrays(baseline: Sequence[float], other: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) == 0:
        raise ValueError("paired scores must be non-empty 1-d sequences of equal length")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired scores must be finite")
    return a, b


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


# Up to this many discordant pairs the binomial tail is summed in exact integers; above it, from the
# exact largest term and a rapidly converging series of term ratios (as exact, and faster).
_MCNEMAR_EXACT_INTEGER_MAX_N = 20_000


def _binomial_half_lower_tail(n: int, k: int) -> float:
    """P[X <= k] for X ~ Bin(n, 1/2) and 2k < n, without overflow or underflow for any n.

    Small n: sum_{i<=k} C(n, i) in Python integers, then one correctly rounded division by 2**n.
    Large n: C(n, k) / 2**n (exact integer, kept as mantissa and exponent) times
    sum_j prod_{i=k-j+1}^{k} i / (n - i + 1), whose terms shrink geometrically; relative error ~1e-13.
    """
    if n <= _MCNEMAR_EXACT_INTEGER_MAX_N:
        term = total = 1
        for i in range(k):
            term = term * (n - i) // (i + 1)
            total += term
        return total / (1 << n)
    top = math.comb(n, k)
    bits = top.bit_length()
    mantissa = top / (1 << bits)  # in [0.5, 1], correctly rounded; top / 2**n == mantissa * 2**(bits - n)
    terms = [1.0]
    term, partial = 1.0, 1.0
    for i in range(k, 0, -1):
        ratio = i / (n - i + 1)  # C(n, i-1) / C(n, i); < 1 and decreasing as i falls, since 2k < n
        term *= ratio
        terms.append(term)
        partial += term
        # The rest is at most term * ratio / (1 - ratio) (geometric with the current, largest, ratio).
        if term * ratio / (1.0 - ratio) < 2.0**-64 * partial:
            break
    return math.ldexp(mantissa * math.fsum(terms), bits - n)


def mcnemar_exact(baseline: Sequence[float], other: Sequence[float]) -> float:
    """Exact two-sided McNemar p-value for paired 0/1 scores (e.g. right/wrong on the same questions).

    Only discordant pairs say which system is better: b = items only ``baseline`` gets right, c = items
    only ``other`` gets right. Under "no difference" each discordant pair goes either way with
    probability 1/2, so p = min(1, 2 P[X <= min(b, c)]) for X ~ Bin(b + c, 1/2), and p = 1 when b + c = 0.
    The binomial test is used rather than the chi-square approximation, which is poor when b + c is small.
    """
    a, b = _paired_arrays(baseline, other)
    if not (_is_binary(a) and _is_binary(b)):
        raise ValueError("McNemar's test needs scores that are all 0 or 1")
    only_baseline = int(np.count_nonzero((a == 1.0) & (b == 0.0)))
    only_other = int(np.count_nonzero((a == 0.0) & (b == 1.0)))
    n, k = only_baseline + only_other, min(only_baseline, only_other)
    if 2 * k + 1 >= n:  # b == c (n = 0 included), or |b - c| = 1: the doubled tail is >= 1, capped at 1
        return 1.0
    return min(1.0, 2.0 * _binomial_half_lower_tail(n, k))


# Exact enumeration of all 2**m sign flips up to this many non-zero differences (65,536 rows).
_PERMUTATION_EXACT_MAX_NONZERO = 16
# Sums within this fraction of sum(|d|) of the observed one count as ties (float rounding only).
_PERMUTATION_TIE_TOLERANCE = 1e-10


def paired_permutation_p(
    baseline: Sequence[float], other: Sequence[float], resamples: int = PERMUTATION_RESAMPLES, seed: int = 0
) -> float:
    """Two-sided paired sign-flip permutation p-value for the mean difference ``other - baseline``.

    For any scores: fractional VQA accuracies (0, .3, .6, .9, 1) and continuous CIDEr alike, with no
    normality assumption. Under "no difference" each item's difference is as likely to have either
    sign, so the observed |sum of differences| is compared with its distribution over random sign
    flips. Items with a zero difference are unaffected by a flip and drop out. Up to 16 non-zero
    differences all 2**m flips are enumerated (an exact p); beyond, ``resamples`` random flips give
    (count + 1) / (resamples + 1), which counts the observed assignment and so is never 0.
    Reproducible for a given ``seed``.
    """
    a, b = _paired_arrays(baseline, other)
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    diff = b - a
    diff = diff[diff != 0.0]
    if len(diff) == 0:
        return 1.0
    # Flips only act through |d|: group equal magnitudes (VQA scores take few values), so one binomial
    # draw per distinct magnitude replaces one coin per item; the distribution of the sum is the same.
    magnitudes, inverse, counts = np.unique(np.abs(diff), return_inverse=True, return_counts=True)
    positives = np.bincount(inverse, weights=(diff > 0).astype(np.float64), minlength=len(magnitudes))
    observed = abs(float((2.0 * positives - counts) @ magnitudes))
    threshold = observed - _PERMUTATION_TIE_TOLERANCE * float(counts @ magnitudes)
    if len(diff) <= _PERMUTATION_EXACT_MAX_NONZERO:
        m = len(diff)
        signs = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1) * 2.0 - 1.0  # every sign pattern, once
        sums = np.abs(signs @ np.abs(diff))
        return float(np.count_nonzero(sums >= threshold)) / 2**m
    # Magnitudes met once (continuous scores) get one random bit each, 8 to a random byte, which is
    # much faster than binomial draws of size 1: sum(sign * m) = 2 * sum(bit * m) - sum(m).
    single = counts == 1
    single_magnitudes, single_total = magnitudes[single], float(magnitudes[single].sum())
    group_magnitudes, group_counts = magnitudes[~single], counts[~single]
    rng = np.random.default_rng(seed)
    rows = max(1, (1 << 22) // len(magnitudes))  # bounds memory to a few million draws at a time
    extreme, done = 0, 0
    while done < resamples:
        size = min(rows, resamples - done)
        sums = np.zeros(size)
        if len(single_magnitudes):
            random_bytes = rng.integers(0, 256, size=(size, (len(single_magnitudes) + 7) // 8), dtype=np.uint8)
            bits = np.unpackbits(random_bytes, axis=1, count=len(single_magnitudes)).astype(np.float64)
            sums += 2.0 * (bits @ single_magnitudes) - single_total
        if len(group_magnitudes):
            heads = rng.binomial(group_counts, 0.5, size=(size, len(group_counts)))
            sums += (2.0 * heads - group_counts) @ group_magnitudes
        extreme += int(np.count_nonzero(np.abs(sums) >= threshold))
        done += size
    return (extreme + 1) / (resamples + 1)


def paired_p_value(
    baseline: Sequence[float], other: Sequence[float], resamples: int = PERMUTATION_RESAMPLES, seed: int = 0
) -> tuple[float, str]:
    """(p, method) for "other differs from baseline" on paired per-item scores.

    McNemar's exact test when every score is 0 or 1 (it is exact there and needs no resampling),
    otherwise the sign-flip permutation test (fractional or continuous scores).
    """
    a, b = _paired_arrays(baseline, other)
    if _is_binary(a) and _is_binary(b):
        return mcnemar_exact(a, b), "mcnemar_exact"
    return paired_permutation_p(a, b, resamples=resamples, seed=seed), "paired_permutation"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    When several comparisons are reported together, rejecting each at adjusted p <= alpha keeps the
    chance of any false positive at most alpha (under any dependence), and is uniformly more powerful
    than Bonferroni. Step-down: the i-th smallest of m is multiplied by (m - i + 1), running maxima
    keep the adjusted values in the same order as the raw ones, and they are capped at 1.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("holm takes a flat sequence of p-values")
    if not ((p >= 0.0) & (p <= 1.0)).all():  # also rejects NaN
        raise ValueError("p-values must lie in [0, 1]")
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted.tolist()


# ----------------------------------------------------------------------------------------------------
# Error bars over several seeds


def _bootstrap_seed_means(per_seed: list[np.ndarray], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Grand means (mean of seed means) of ``resamples`` two-level bootstrap samples."""
    n_seeds = len(per_seed)
    chosen = rng.integers(0, n_seeds, size=(resamples, n_seeds))  # level 1: seeds, with replacement
    totals = np.zeros(resamples)
    for s, values in enumerate(per_seed):
        slots = np.flatnonzero(chosen == s) // n_seeds  # which resample each draw of seed s belongs to
        # level 2: the items of this seed, with replacement, afresh for every draw of the seed
        distinct, frequency = np.unique(values, return_counts=True)
        if 4 * len(distinct) <= len(values):
            # Few distinct scores (VQA's 0/.3/.6/.9/1): how often each is drawn is multinomial, so the
            # resampled mean is drawn from the same distribution at a cost per distinct value, not per item.
            counts = rng.multinomial(len(values), frequency / len(values), size=len(slots))
            np.add.at(totals, slots, (counts @ distinct) / len(values))
            continue
        rows = max(1, (1 << 22) // len(values))  # bounds memory to a few million draws at a time
        for start in range(0, len(slots), rows):
            part = slots[start : start + rows]
            means = values[rng.integers(0, len(values), size=(len(part), len(values)))].mean(axis=1)
            np.add.at(totals, part, means)
    return totals / n_seeds


def _seed_arrays(scores_by_seed: Sequence[Sequence[float]]) -> list[np.ndarray]:
    per_seed = [np.asarray(scores, dtype=np.float64) for scores in scores_by_seed]
    if not per_seed or any(values.ndim != 1 or len(values) == 0 for values in per_seed):
        raise ValueError("need at least one seed, each with at least one score")
    if not all(np.isfinite(values).all() for values in per_seed):
        raise ValueError("scores must be finite")
    return per_seed


def two_level_bootstrap_ci(
    scores_by_seed: Sequence[Sequence[float]], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the grand mean (mean of per-seed means) of runs repeated over seeds.

    Resampling only items treats the seeds' differences as if they were certain, and gives intervals
    that are too narrow when the seeds disagree (e.g. few-shot examples drawn per seed). Here each
    bootstrap sample first draws seeds with replacement, then items with replacement within every drawn
    seed, so both sources of variation reach the interval. Seeds may have different numbers of items.
    With one seed this is the ordinary item bootstrap of that seed. It errs on the wide side: when the
    seeds agree it is up to sqrt(2) wider than the item-only interval (the item noise already in the
    seed means is counted at both levels), and with few seeds the seed level is coarse (3 seeds allow
    only 10 distinct seed draws).
    """
    per_seed = _seed_arrays(scores_by_seed)
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    grand = _bootstrap_seed_means(per_seed, resamples, np.random.default_rng(seed))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(grand, [alpha, 1 - alpha])
    return float(low), float(high)


def paired_two_level_bootstrap_ci(
    diffs_by_seed: Sequence[Sequence[float]], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean difference, low, high) for paired differences keyed by (seed, item).

    ``diffs_by_seed[s][i]`` is other - baseline on item i of seed s, both systems run with the same
    seed s (same sampled shots, say), so the pairing removes item and seed effects they share. The
    mean is the mean of per-seed mean differences; the interval is ``two_level_bootstrap_ci`` of them.
    """
    per_seed = _seed_arrays(diffs_by_seed)
    mean = float(np.mean([values.mean() for values in per_seed]))
    low, high = two_level_bootstrap_ci(per_seed, confidence=confidence, resamples=resamples, seed=seed)
    return mean, low, high


# ----------------------------------------------------------------------------------------------------
# Items drawn several times (few-shot seeds): one cluster each


def at_floor(p: float, test: str, resamples: int = PERMUTATION_RESAMPLES) -> bool:
    """Whether a p-value is the smallest a ``resamples``-flip permutation test can give: the true p is at most it."""
    return test == "paired_permutation" and p <= (1 + 1e-9) / (resamples + 1)


def item_means(values: dict[tuple[str, str], float]) -> dict[str, float]:
    """Per-item means of scores keyed by (seed, item id): an item's draws (few-shot seeds) are one unit."""
    sums: dict[str, list[float]] = {}
    for (_, item), value in values.items():
        sums.setdefault(item, []).append(value)
    return {item: sum(v) / len(v) for item, v in sorted(sums.items())}


def clustered_bootstrap_ci(
    values: dict[tuple[str, str], float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean of per-seed means, low, high) of scores (or paired differences) keyed by (seed, item id), resampling
    items as clusters: each bootstrap sample draws items with replacement and takes every draw (seed) of a drawn
    item with it, so draws of one item never count as independent items. With one seed this is the ordinary item
    bootstrap. Seeds may hold different items; a seed with no drawn item in a resample is left out of its mean."""
    if not values:
        raise ValueError("no scores")
    seeds = sorted({s for s, _ in values})
    items = sorted({i for _, i in values})
    row, column = {i: k for k, i in enumerate(items)}, {s: k for k, s in enumerate(seeds)}
    matrix, present = np.zeros((len(items), len(seeds))), np.zeros((len(items), len(seeds)))
    for (s, i), value in values.items():
        matrix[row[i], column[s]], present[row[i], column[s]] = value, 1.0
    if not np.isfinite(matrix).all():
        raise ValueError("scores must be finite")

    def grand(weights: np.ndarray) -> np.ndarray:
        sums, counts = weights @ matrix, weights @ present
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)
        kept = counts > 0
        return np.where(kept, means, 0.0).sum(axis=1) / kept.sum(axis=1)

    mean = float(grand(np.ones((1, len(items))))[0])
    rng = np.random.default_rng(seed)
    rows = max(1, (1 << 22) // len(items))  # bounds memory to a few million weights at a time
    out = []
    for start in range(0, resamples, rows):
        size = min(rows, resamples - start)
        out.append(grand(rng.multinomial(len(items), np.full(len(items), 1 / len(items)), size=size)))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(out), [alpha, 1 - alpha])
    return mean, float(low), float(high)


def detectable(differences: Sequence[float], alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a paired two-sided test at ``alpha`` detects with probability ``power``,
    from the observed per-item differences (their spread and number): (z(1 - alpha/2) + z(power)) sd / sqrt(n).
    The normal approximation; ``harness.metrics.power`` checks it against the harness's own test. NaN for fewer than
    two items."""
    d = np.asarray(differences, dtype=np.float64)
    if len(d) < 2:
        return float("nan")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return float(z * d.std(ddof=1) / math.sqrt(len(d)))
