"""How often a verdict calls a key with no effect "better/worse", and how often it finds a known
effect: compare's decision (the best value picked by its median score, every other value tested
against it at the Bonferroni level) simulated over seed-to-seed and measurement noise, at one look
(`ganlab compare`) and at every round of a study run until settled (`ganlab study`).

    python -m ganlab.judging.calibration       # prints the tables that docs/statistics.md quotes

Scores are simulated as shared seed effect + each run's own seed noise (sd = ratio) + the
evaluation's noise (sd 1, its reported se); tests/test_calibration.py checks every cell."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

from ganlab.judging import stats

RATIOS = (0.0, 1.0, 3.0, 10.0)  # seed-to-seed spread / measurement noise
PAIRS = (2, 3, 4, 5, 6, 8, 10)
VALUES = (2, 3, 4)


def simulate_scores(rng: np.random.Generator, values: int, pairs: int, ratio: float, effect: float = 0.0) -> np.ndarray:
    """scores[value, seed]; the last value is worse by `effect` measurement-noise units."""
    shared = rng.normal(0, ratio, size=pairs)  # what a seed does to every value alike (pairing removes it)
    scores = shared + rng.normal(0, ratio, size=(values, pairs)) + rng.normal(0, 1, size=(values, pairs))
    scores[-1] += effect
    return scores


def decide(scores: np.ndarray, alpha: float = stats.ALPHA, se: float = 1.0,
           min_effect: float | None = None) -> dict[int, str]:
    """compare's verdict for each value but the best: better | worse | within noise, or (given
    `min_effect`) "smaller" where the pairs rule out a difference that large, as a study's look does."""
    medians = [statistics.median(row) for row in scores]
    best = min(range(len(scores)), key=lambda v: (medians[v], v))
    level = stats.pairwise_level(len(scores), alpha)
    out = {}
    for v in range(len(scores)):
        if v != best:
            diffs = [float(x) for x in scores[v] - scores[best]]
            test = stats.paired_test(diffs, level, math.hypot(se, se))
            median = statistics.median(diffs)
            out[v] = (("worse" if median > 0 else "better") if test.significant and median != 0
                      else "smaller" if min_effect and stats.rules_out(diffs, min_effect, level, math.hypot(se, se))
                      else "within noise")
    return out


@dataclass
class Sequential:
    """A study's outcome: whether a look called any value different, whether it called the value
    that carries the effect worse, whether it settled any difference as smaller than the minimum effect,
    and how many seeds per value it took."""
    called: bool
    found: bool
    small: bool
    pairs: int


def run_study(rng: np.random.Generator, values: int, ratio: float, per_round: int, max_pairs: int,
              effect: float = 0.0, min_effect: float | None = None, alpha: float = stats.ALPHA) -> Sequential:
    """A study run until settled, as `ganlab study` runs one: a round of seeds, then a look at the
    level that its share of the seed budget spends, until every value is settled (beyond noise, or
    ruled out below `min_effect`) or the budget is spent. A value called different stays called."""
    scores = simulate_scores(rng, values, max_pairs, ratio, effect)
    previous, called, small = 0, {}, False
    for pairs in range(per_round, max_pairs + 1, per_round):
        verdicts = decide(scores[:, :pairs], stats.look_level(pairs, previous, max_pairs, alpha), min_effect=min_effect)
        previous = pairs
        called.update({v: verdict for v, verdict in verdicts.items() if verdict in ("better", "worse")})
        small = small or "smaller" in verdicts.values()
        if all(verdict != "within noise" for verdict in verdicts.values()):
            break
    return Sequential(bool(called), called.get(values - 1) == "worse", small, previous)


def false_rate(values: int, pairs: int, ratio: float, reps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    return sum(any(v != "within noise" for v in decide(simulate_scores(rng, values, pairs, ratio)).values())
               for _ in range(reps)) / reps


def power_rate(values: int, pairs: int, ratio: float, effect: float, reps: int, seed: int = 0) -> float:
    """How often the worse value (by `effect`) is called worse."""
    rng = np.random.default_rng(seed)
    return sum(decide(simulate_scores(rng, values, pairs, ratio, effect)).get(values - 1) == "worse"
               for _ in range(reps)) / reps


def main(reps: int = 2000) -> None:
    print(f"One look (compare): false 'better/worse' rate over {reps} no-effect keys per cell")
    print("ratio  values  " + "  ".join(f"{n:>5} pairs" for n in PAIRS))
    for ratio in RATIOS:
        for k in VALUES:
            cells = "  ".join(f"{false_rate(k, n, ratio, reps):>11.3f}" for n in PAIRS)
            print(f"{ratio:>5}  {k:>6}  {cells}")
    print(f"\nOne look: power to call worse a value 3 measurement-noise units worse (ratio 1), {reps} keys per cell")
    for k in VALUES:
        print(f"values {k}: " + "  ".join(f"{n} pairs {power_rate(k, n, 1.0, 3.0, reps):.2f}" for n in PAIRS))
    print(f"\nUntil settled (rounds of 2 seeds, at most 12; min effect 2 measurement-noise units): false rate; for "
          f"one value worse by 6 sd of a run's score, how often it is found and the seeds per value at the stop; "
          f"{reps} studies per cell")
    for ratio in RATIOS:
        for k in VALUES:
            rng, run_sd = np.random.default_rng(1), math.sqrt(1 + 2 * ratio**2)
            null = [run_study(rng, k, ratio, 2, 12, min_effect=2 * run_sd) for _ in range(reps)]
            big = [run_study(rng, k, ratio, 2, 12, effect=6 * run_sd, min_effect=2 * run_sd) for _ in range(reps)]
            print(f"ratio {ratio:>4} values {k}: false {sum(s.called for s in null) / reps:.3f}, stopped at "
                  f"{statistics.fmean(s.pairs for s in null):.1f} seeds; effect found {sum(s.found for s in big) / reps:.2f}"
                  f", stopped at {statistics.fmean(s.pairs for s in big):.1f} seeds")


if __name__ == "__main__":
    main()
