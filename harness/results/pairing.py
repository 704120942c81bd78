"""Paired measurement of two cells' per-item scores, as ``harness findings`` and ``harness compare`` both use it.

Scores are keyed by (seed key, item id): the draws (few-shot seeds, training seeds) of one item are one cluster. The
effect is the mean of per-seed means; its 95% CI a bootstrap that resamples items with all their draws; its p-value a
paired test on per-item means (``harness.metrics.stats``); the caller seeds both by the cells' identity. Over fewer
than ``stats.MIN_ITEMS_FOR_CI`` items there is no CI (NaN), only the effect and p.
"""

from __future__ import annotations

from harness.metrics import stats


def paired(a: dict[tuple, float], b: dict[tuple, float], seed: int = 0, alpha: float = 0.05) -> dict:
    """B - A over the items both hold (same seed key and id), in points: n (item draws), n_items, n_seeds, effect (the
    mean of per-seed means), CI (items resampled with all their draws), p and its test on per-item means, whether p
    is at the permutation test's floor, and the effect detectable at 80% power at ``alpha``. No shared item: n 0."""
    keys = sorted(a.keys() & b.keys())
    if not keys:
        return {"n": 0, "n_seeds": 0}
    effect, low, high = stats.clustered_bootstrap_ci({k: b[k] - a[k] for k in keys}, seed=seed)
    a_items, b_items = stats.item_means({k: a[k] for k in keys}), stats.item_means({k: b[k] for k in keys})
    items = sorted(a_items)
    p, test = stats.paired_p_value([a_items[i] for i in items], [b_items[i] for i in items], seed=seed)
    detectable = stats.detectable([b_items[i] - a_items[i] for i in items], alpha)
    return {"n": len(keys), "n_items": len(items), "n_seeds": len({k[0] for k in keys}), "effect": 100 * effect,
            **_interval(low, high, len(items)), "p_value": p, "test": test,
            "p_floor": stats.at_floor(p, test), "detectable": 100 * detectable}  # fmt: skip


def absolute(a: dict[tuple, float], seed: int = 0) -> dict:
    """A's own score in points: the mean of per-seed means, with its bootstrap CI (items resampled with all their
    draws)."""
    if not a:
        return {"n": 0, "n_seeds": 0}
    effect, low, high = stats.clustered_bootstrap_ci(a, seed=seed)
    n_items = len({i for _, i in a})
    return {"n": len(a), "n_items": n_items, "n_seeds": len({s for s, _ in a}), "effect": 100 * effect,
            **_interval(low, high, n_items)}  # fmt: skip


def _interval(low: float, high: float, n_items: int) -> dict:
    """The CI in points, or none (NaN: an empty cell) over fewer items than ``stats.MIN_ITEMS_FOR_CI``."""
    if not stats.ci_shown(n_items):
        return {"ci95_low": float("nan"), "ci95_high": float("nan")}
    return {"ci95_low": 100 * low, "ci95_high": 100 * high}
