"""Verdicts calibrated at any noise: compare's decision and a study's looks, simulated over seed-to-seed
and measurement noise (pure statistics, no training), never call a no-effect key different more than
5% of the time, and find a known effect."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from ganlab.judging import calibration, stats
from ganlab.judging.compare import compare
from ganlab.record.catalog import RunRecord

REPS = 300  # keys per cell: a one-sided binomial test at 0.1% would see a true rate of 9% or more


def at_most_five_percent(calls: int, reps: int) -> bool:
    """The observed rate is consistent with a true rate of at most 5% (one-sided binomial test at 0.1%)."""
    return binomtest(calls, reps, stats.ALPHA, alternative="greater").pvalue > 0.001


@pytest.mark.parametrize("values", calibration.VALUES)
def test_one_look_calls_a_no_effect_key_different_at_most_5_percent_at_any_noise_ratio_and_pairs(values):
    rates = {}
    for ratio in (*calibration.RATIOS, 5.0):
        for pairs in calibration.PAIRS:
            rng = np.random.default_rng(hash((values, ratio, pairs)) % 2**32)
            calls = sum(any(v != "within noise" for v in calibration.decide(
                calibration.simulate_scores(rng, values, pairs, ratio)).values()) for _ in range(REPS))
            rates[(ratio, pairs)] = calls / REPS
            assert at_most_five_percent(calls, REPS), (ratio, pairs, calls / REPS)
    assert max(rates.values()) > 0.01  # a test that never speaks would pass too: it does speak


def test_one_look_finds_a_known_effect_and_its_power_grows_with_the_pairs():
    found = [calibration.power_rate(2, pairs, ratio=1.0, effect=4.0, reps=REPS) for pairs in (2, 3, 5, 10)]
    assert found == sorted(found) and found[-1] > 0.95 and found[1] > 0.3


@pytest.mark.parametrize("values", calibration.VALUES)
def test_a_study_with_a_look_after_every_round_stays_at_5_percent(values):
    for ratio in (0.0, 1.0, 10.0):
        rng = np.random.default_rng(values * 100 + int(ratio))
        calls = sum(calibration.run_study(rng, values, ratio, per_round=2, max_pairs=10).called for _ in range(REPS))
        assert at_most_five_percent(calls, REPS), (ratio, calls / REPS)


def test_looking_after_every_round_without_spending_alpha_is_not_calibrated():
    """What the spending fixes: the same nine looks, each at the full 5%, call a no-effect pair different
    far more often than 5%."""
    rng = np.random.default_rng(7)
    calls = 0
    for _ in range(REPS):
        scores = calibration.simulate_scores(rng, 2, 10, 1.0)
        calls += any(v != "within noise" for pairs in range(2, 11) for v in calibration.decide(scores[:, :pairs]).values())
    assert not at_most_five_percent(calls, REPS)


def test_a_study_stops_early_on_a_large_effect_and_uses_the_budget_on_none():
    rng = np.random.default_rng(3)
    large = [calibration.run_study(rng, 2, 1.0, 2, 12, effect=12.0) for _ in range(200)]
    assert sum(s.found for s in large) / 200 > 0.95 and np.mean([s.pairs for s in large]) <= 4
    null = [calibration.run_study(rng, 2, 1.0, 2, 12, min_effect=3.0) for _ in range(200)]
    assert np.mean([s.pairs for s in null]) < 12  # ruled out below the minimum effect before the budget
    assert sum(s.called for s in null) / 200 <= 0.05


def test_a_difference_as_large_as_the_minimum_effect_is_rarely_settled_as_smaller():
    """"smaller than D" is an equivalence test: a key worse by exactly D (one sd of a paired difference, where
    a study of 12 seeds has about 80% power) is called smaller in at most 5% of studies (a rule by power alone:
    7% at ratio 1)."""
    for ratio, seed in ((0.0, 4), (1.0, 5), (3.0, 6)):
        rng, d = np.random.default_rng(seed), math.sqrt(2 * (1 + 2 * ratio**2))
        studies = [calibration.run_study(rng, 2, ratio, 2, 12, effect=d, min_effect=d) for _ in range(REPS)]
        assert at_most_five_percent(sum(s.small for s in studies), REPS), ratio


def test_compare_decides_as_the_simulation_does():
    """The simulation is compare's own decision: on the same scores compare gives the same verdicts."""
    rng = np.random.default_rng(11)
    for trial in range(40):
        values, pairs = 2 + trial % 3, 2 + trial % 7
        scores = calibration.simulate_scores(rng, values, pairs, ratio=1.0, effect=float(trial % 4))
        runs = [RunRecord(Path(f"/sim/{v}-{s}"), "sim", [f"lr={v}", f"seed={s}"],
                          {"status": "completed", "quality": {"metric": "fd", "best": {
                              "score": float(scores[v, s]), "scores": {"fd": float(scores[v, s]), "fd_se": 1.0}}}})
                for v in range(values) for s in range(pairs)]
        factor = compare(runs).factors["lr"]
        assert {int(e.value): e.verdict for e in factor.effects} == calibration.decide(scores), trial


def test_alpha_spending_never_spends_more_than_alpha():
    looks = [stats.look_level(n, n - 2, 12) for n in range(2, 13, 2)]
    assert sum(looks) == pytest.approx(stats.ALPHA) and all(level > 0 for level in looks)
    assert stats.spent(1.0) == pytest.approx(0.05) and stats.spent(0.0) == 0.0
    assert stats.pairwise_level(4) == pytest.approx(0.05 / 6) and stats.pairwise_level(2) == 0.05
    assert math.isclose(stats.look_level(12, 0, 12), 0.05)
