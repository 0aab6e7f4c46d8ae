"""Statistics of a comparison (pure functions): the median paired difference with a bootstrap
interval; the paired test a verdict rests on (a t-test; an exact sign-flip test where a failed run
leaves a difference without size); an unpaired rank test where no pairs exist; the alpha spent at each look
of a study run until settled; power, and how many seeds a difference would need.

Why these tests: a verdict must be calibrated whatever the ratio of seed-to-seed spread to the
evaluation's own noise. Both noises are in each paired difference, so a test on the differences'
own spread is calibrated at any ratio; the evaluation's standard error only ever raises that spread
(never lowers it), so a difference within the measurement noise is never called real."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from typing import Optional

ALPHA = 0.05  # the false "better/worse" rate a key's verdict is held to
POWER = 0.8
MAX_SEEDS_SAID = 100  # beyond this "seeds needed" is said in words, not as a number


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
    import numpy as np

    d = np.array([x for x in differences if not math.isnan(x)], dtype=float)
    d = np.where(np.isfinite(d), d, np.copysign(1e12, d))  # a failure: the largest difference
    if not len(d):
        return 1.0
    if len(d) <= exact_limit:
        signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
    else:
        signs = np.random.default_rng(seed).choice((-1, 1), size=(draws, len(d)))
    hits = int((np.abs(signs @ d) >= abs(d.sum()) * (1 - 1e-12) - 1e-12).sum())
    return hits / len(signs) if len(d) <= exact_limit else (hits + 1) / (draws + 1)


def min_pairs_for(level: float = ALPHA) -> int:
    """The fewest pairs with which an exact sign-flip test can reach `level` (two-sided)."""
    return next(n for n in range(1, 64) if 2 / 2**n <= level)


def t_test_p(differences: list[float]) -> float:
    """Two-sided one-sample t-test of a zero mean difference."""
    from scipy.special import stdtr  # Student's t distribution function (scipy.stats' t without its overhead)

    n, mean, sd = len(differences), statistics.fmean(differences), statistics.stdev(differences)
    if sd == 0:  # identical differences: the exact sign-flip answer, never a p of 0
        return sign_flip_p(differences)
    return float(2 * stdtr(n - 1, -abs(mean) / (sd / math.sqrt(n))))


def within_noise_p(differences: list[float], noise_sd: float) -> float:
    """Two-sided p-value of the mean difference against the measurement noise alone (`noise_sd` per
    difference): large when the mean lies within what the evaluation's own noise explains."""
    if not noise_sd:
        return 0.0
    z = abs(statistics.fmean(differences)) / (noise_sd / math.sqrt(len(differences)))
    return math.erfc(z / math.sqrt(2)) if math.isfinite(z) else 0.0


@dataclass
class PairedTest:
    method: str  # t-test | sign-flip | none
    p: Optional[float]
    level: float  # the p-value it is held to
    reachable: bool  # whether any differences of this many pairs could reach the level

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p <= self.level


def paired_test(differences: list[float], level: float, noise_sd: float = 0.0) -> PairedTest:
    """The test a paired verdict rests on: the paired t-test, which assumes roughly normal differences
    (seed and measurement noise, each a sum of many small effects; with no effect the differences are
    symmetric, where it holds its level) and can speak from 2 pairs, where the exact sign-flip test
    cannot go below 2 / 2^n. A failed run's difference has no size: then only the sign-flip test
    applies. Either is also held to the measurement noise (the larger p of the two counts), so a mean
    difference within it is never called real."""
    n = len(differences)
    if n < 2:
        return PairedTest("none", None, level, False)
    if not all(map(math.isfinite, differences)):
        method, p, reachable = "sign-flip", sign_flip_p(differences), 2 / 2**n <= level
    elif statistics.stdev(differences) == 0 and noise_sd:  # identical differences: only the known noise is left
        method, p, reachable = "t-test", 0.0, True
    else:
        method, p, reachable = "t-test", t_test_p(differences), True
    return PairedTest(method, max(p, within_noise_p(differences, noise_sd)), level, reachable)


def rank_test_p(a: list[float], b: list[float]) -> float:
    """Two-sided Mann-Whitney U p-value for unpaired samples (failures as +inf rank worst)."""
    from scipy.stats import mannwhitneyu

    if not a or not b:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue)


def pairwise_level(values: int, alpha: float = ALPHA) -> float:
    """The level of one value-against-the-best test: the best is picked from the data, so each such
    test is one of the k(k-1)/2 pairs of values, and Bonferroni over all of them holds the key's
    false "better/worse" rate at `alpha`."""
    return alpha / max(1, values * (values - 1) // 2)


def spent(fraction: float, alpha: float = ALPHA) -> float:
    """Alpha spent by `fraction` of a study's seed budget (Lan-DeMets, Pocock type): looks after every
    round, each at the level it adds, never spend more than `alpha` in all."""
    return alpha * math.log(1 + (math.e - 1) * min(1.0, max(0.0, fraction)))


def look_level(pairs: int, previous_pairs: int, max_pairs: int, alpha: float = ALPHA) -> float:
    """The level of the look at `pairs` pairs, the last look having been at `previous_pairs`."""
    return spent(pairs / max_pairs, alpha) - spent(previous_pairs / max_pairs, alpha)


def power(effect: float, sd: float, pairs: int, level: float = ALPHA) -> float:
    """Power of the two-sided paired t-test at `level` to find a true mean difference `effect` whose
    differences have standard deviation `sd`."""
    from scipy.special import stdtrit  # the t quantile
    from scipy.stats import nct  # the noncentral t distribution

    if pairs < 2 or sd <= 0:
        return 0.0 if pairs < 2 else 1.0
    df, ncp = pairs - 1, abs(effect) / (sd / math.sqrt(pairs))
    critical = stdtrit(df, 1 - level / 2)
    wrong_side = nct.cdf(-critical, df, ncp)  # scipy says nan where it is below ~1e-13 (scipy.special's nctdtr too)
    return float(nct.sf(critical, df, ncp) + (wrong_side if math.isfinite(wrong_side) else 0.0))


def seeds_needed(effect: float, sd: float, level: float = ALPHA, limit: int = MAX_SEEDS_SAID) -> int | None:
    """Seeds per value (pairs) for 80% power to find `effect` at `level`, given the standard deviation
    `sd` of the paired differences; None if unknowable; limit + 1 for "more than `limit`"."""
    if not (math.isfinite(effect) and math.isfinite(sd)) or sd <= 0 or effect == 0:
        return None
    for pairs in range(2, limit + 1):
        if power(effect, sd, pairs, level) >= POWER:
            return pairs
    return limit + 1


def seeds_in_words(needed: int | None, effect: float, unit: str = "seeds") -> str:
    if needed is None:
        return ""
    if needed > MAX_SEEDS_SAID:
        return (f"more than {MAX_SEEDS_SAID} {unit} per value would be needed to settle a difference of "
                f"{abs(effect):.3g}: at this noise it is too small to find")
    return f"about {needed} {unit} per value would settle a difference of {abs(effect):.3g} at 80% power"


def rules_out(differences: list[float], min_effect: float, level: float, noise_sd: float = 0.0) -> bool:
    """Whether these pairs settle that the difference is smaller than `min_effect`: two one-sided t-tests at
    `level` (an equivalence test, TOST) reject a mean difference of +min_effect and of -min_effect, i.e. the
    mean's one-sided 1 - level bounds both lie inside them. A true difference of min_effect is called smaller
    at most `level` of the time."""
    from scipy.special import stdtrit  # the t quantile

    if len(differences) < 3 or not all(map(math.isfinite, differences)) or min_effect <= 0:
        return False
    n = len(differences)
    se = max(statistics.stdev(differences), noise_sd) / math.sqrt(n)
    return abs(statistics.fmean(differences)) + stdtrit(n - 1, 1 - level) * se < min_effect
