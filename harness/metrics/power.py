"""Power of a paired comparison: how many items (episodes) and few-shot draws per item a comparison needs to detect
an effect, under the test ``harness findings`` and ``harness compare`` use (``harness power``).

The plan is the normal approximation n = ((z(1 - alpha/2) sd0 + z(power) sd) / effect)^2, where sd is the spread of
an item's mean difference over its draws and sd0 its root mean square (the spread a sign-flip test sees under "no
difference"); it is checked by simulation: synthetic paired tables of that size, seeded,
tested with the harness's own paired test on per-item means (``harness.metrics.stats.paired_p_value``).

The model behind sd: every draw of every item is scored independently, B with mean base + effect, A with mean base.
- ``binary``: right or wrong (variance p(1 - p), the largest any score in [0, 1] with mean p can have);
- ``vqa``: VQA accuracy's values 0, 0.3, 0.6, 0.9 and 1, a tenth of the answers partly right (spread evenly over
  0.3, 0.6 and 0.9; less near 0 and 100), the rest right or wrong.
Two things make real data differ, both said where the plan is printed: when the two models agree on which items are
hard, a paired test needs fewer items than this; when an item's difficulty persists across draws, more draws of it
help less than this says (more items are the safer way to power).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from harness.errors import HarnessError
from harness.metrics import stats

METRICS = ("binary", "vqa")
_PARTIAL = 0.1  # vqa: the share of partly right answers (0.3, 0.6, 0.9), where the mean allows it


def _vqa_shares(p: float) -> tuple[float, float]:
    """(share scoring 1, share partly right) of VQA scores with mean ``p``."""
    partial = min(_PARTIAL, p / 0.6, (1 - p) / 0.4)
    return p - 0.6 * partial, partial


def variance(metric: str, p: float) -> float:
    """The variance of one draw's score with mean ``p`` (a fraction)."""
    if metric == "binary":
        return p * (1 - p)
    full, partial = _vqa_shares(p)
    return full + partial / 3 * (0.09 + 0.36 + 0.81) - p * p


def sampler(metric: str, p: float) -> Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]:
    """Draws of one score with mean ``p``, as ``variance`` describes them."""
    if metric == "binary":
        return lambda rng, shape: (rng.random(shape) < p).astype(np.float64)
    full, partial = _vqa_shares(p)
    values = np.array([1.0, 0.3, 0.6, 0.9, 0.0])
    weights = np.array([full, partial / 3, partial / 3, partial / 3, max(0.0, 1 - full - partial)])
    return lambda rng, shape: rng.choice(values, size=shape, p=weights / weights.sum())


def check(effect: float, base: float, draws: int, alpha: float, power: float, metric: str) -> None:
    """One line naming the option and its value for anything the plan cannot take."""
    if not (math.isfinite(effect) and effect > 0):
        raise HarnessError(f"--effect must be a positive number of points, got {effect:g}")
    if not (math.isfinite(base) and 0 <= base < 100):
        raise HarnessError(f"--base must be a score in points from 0 to below 100, got {base:g}")
    if base + effect > 100:
        raise HarnessError(f"--effect {effect:g} over --base {base:g} is above 100 points")
    if draws < 1:
        raise HarnessError(f"--draws must be 1 or more few-shot draws per item, got {draws}")
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha must lie between 0 and 1 (exclusive), got {alpha:g}")
    if not 0 < power < 1:
        raise HarnessError(f"--power must lie between 0 and 1 (exclusive), got {power:g}")
    if metric not in METRICS:
        raise HarnessError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")


def items_needed(effect: float, base: float, draws: int = 1, alpha: float = 0.05, power: float = 0.8,
                 metric: str = "binary") -> int:  # fmt: skip
    """Items (episodes) to detect ``effect`` points over ``base`` points with probability ``power`` at two-sided
    ``alpha``, each item drawn ``draws`` times (the normal approximation)."""
    check(effect, base, draws, alpha, power, metric)
    a, b, delta = base / 100, (base + effect) / 100, effect / 100
    spread = (variance(metric, a) + variance(metric, b)) / draws  # of an item's mean difference
    # A sign-flip test measures the difference against its spread under "no difference": the mean square, effect
    # included (sd0); its power against the spread the effect leaves (sd1).
    sd0, sd1 = math.sqrt(spread + delta * delta), math.sqrt(spread)
    z_alpha, z_power = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    return max(2, math.ceil(((z_alpha * sd0 + z_power * sd1) / delta) ** 2))


def simulated_power(items: int, effect: float, base: float, draws: int = 1, alpha: float = 0.05,
                    metric: str = "binary", simulations: int = 200, seed: int = 0) -> float:  # fmt: skip
    """The share of ``simulations`` synthetic paired tables (``items`` x ``draws`` per side, seeded) in which the
    harness's own paired test on per-item means finds p < ``alpha``."""
    rng = np.random.default_rng(seed)
    draw_a, draw_b = sampler(metric, base / 100), sampler(metric, (base + effect) / 100)
    found = 0
    for k in range(simulations):
        a, b = draw_a(rng, (items, draws)).mean(axis=1), draw_b(rng, (items, draws)).mean(axis=1)
        p, _ = stats.paired_p_value(a, b, seed=stats.seed_of("power", seed, k))
        found += p < alpha
    return found / simulations


def plan(effect: float, base: float, draws: int = 2, alpha: float = 0.05, power: float = 0.8,
         metric: str = "binary") -> str:  # fmt: skip
    """The text ``harness power`` prints: items needed at 1, 2, 4 and the asked number of draws per item, the asked
    one checked by simulation."""
    from tabulate import tabulate

    check(effect, base, draws, alpha, power, metric)
    rows = []
    for d in sorted({1, 2, 4, draws}):
        n = items_needed(effect, base, d, alpha, power, metric)
        simulated = f"{simulated_power(n, effect, base, d, alpha, metric):.2f}" if d == draws else ""
        rows.append([d, n, n * d, simulated])
    headers = ["draws per item (seeds)", "items (episodes)", "evaluations per side", "simulated power"]
    return (
        f"to detect {effect:+g} points over {base:g} ({metric} scores) with power {power:g} at alpha {alpha:g} "
        "(two-sided, before any correction for other comparisons):\n\n"
        + tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
        + "\n\nitems: the normal approximation; simulated power: 200 seeded synthetic tables of that size tested as "
        "`harness findings` tests (per-item means, exact McNemar or a sign-flip permutation test). Assumes independent "
        "draws and independent models: where the two models agree on which items are hard, fewer items do; where an "
        "item's difficulty persists across draws, extra draws help less than this says. Several comparisons in one "
        "table are Holm-adjusted: plan with alpha divided by their number to be safe.\n"
    )
