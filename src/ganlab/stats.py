"""Statistics of a comparison (pure functions): the median paired difference with a bootstrap
interval, an exact sign-flip permutation p-value, an unpaired rank test where no pairs exist, and
how many seeds per arm a within-noise difference would need."""

from __future__ import annotations

import itertools
import math
import random
import statistics

Z_975, Z_80 = 1.959964, 0.841621  # two-sided 5% test, 80% power


def median_interval(values: list[float], level: float = 0.95, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of `values`."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (math.nan, math.nan)
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    tail = (1 - level) / 2
    return medians[int(tail * (draws - 1))], medians[int((1 - tail) * (draws - 1))]


def sign_flip_p(differences: list[float], exact_limit: int = 16, draws: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of a zero mean paired difference, by flipping the signs of the pairs
    (exact over all 2^n flips up to `exact_limit` pairs). With n pairs it cannot go below 2 / 2^n."""
    d = [x for x in differences if math.isfinite(x)]
    if not d:
        return 1.0
    observed = abs(sum(d))

    def extreme(signs) -> bool:
        return abs(sum(s * x for s, x in zip(signs, d))) >= observed - 1e-12

    if len(d) <= exact_limit:
        flips = list(itertools.product((1, -1), repeat=len(d)))
        return sum(map(extreme, flips)) / len(flips)
    rng = random.Random(seed)
    hits = sum(extreme([rng.choice((1, -1)) for _ in d]) for _ in range(draws))
    return (hits + 1) / (draws + 1)


def min_pairs_for(alpha: float = 0.05) -> int:
    """The fewest pairs with which an exact sign-flip test can reach `alpha` (two-sided)."""
    return next(n for n in range(1, 64) if 2 / 2**n <= alpha)


def rank_test_p(a: list[float], b: list[float]) -> float:
    """Two-sided Mann-Whitney U p-value for unpaired samples (failures as +inf rank worst)."""
    from scipy.stats import mannwhitneyu

    if not a or not b:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue)


def seeds_needed(effect: float, spread: float, paired: bool = True) -> int | None:
    """Seeds per arm for 80% power to detect `effect` at 5% (two-sided), given the standard deviation
    `spread` of the paired differences (or of one arm's scores when unpaired); None if unknowable."""
    if not (math.isfinite(effect) and math.isfinite(spread)) or spread <= 0 or effect == 0:
        return None
    n = ((Z_975 + Z_80) * spread / abs(effect)) ** 2 * (1 if paired else 2)
    return max(2, math.ceil(n))
