"""Error bars: percentile bootstrap confidence intervals of a mean score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bootstrap_ci(scores: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
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
