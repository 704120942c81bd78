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
