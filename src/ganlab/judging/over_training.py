"""Effects over training: a value's paired difference to the best value at every evaluation step
that its runs share, with its interval, and in words ("ahead from step 900 to the end", "ahead
early, level at the end"). Each step is judged on its own by its interval at the verdict's level (a
t interval, never narrower than the measurement noise allows): pointwise, it says where a
difference stands out at that step, not that it does over the whole course."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ganlab.record.run_folder import RunFolder

AHEAD, BEHIND, LEVEL = "ahead", "behind", "level"


@dataclass
class Course:
    steps: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)  # mean paired difference (value - best; lower is better)
    low: list[float] = field(default_factory=list)  # its interval at the verdict's level
    high: list[float] = field(default_factory=list)
    states: list[str] = field(default_factory=list)  # ahead | behind | level, per step
    words: str = ""


def course(pairs: list[tuple[Path, Path]], metric: str, level: float, value: str, best: str) -> Course:
    """The course of `value` against `best` over the (value run, best run) `pairs`' quality.csv."""
    curves = [tuple(quality_curve(p, metric) for p in pair) for pair in pairs]
    shared = set.intersection(*(set(a) & set(b) for a, b in curves)) if curves else set()
    out = Course()
    for step in sorted(shared):
        diffs = [a[step][0] - b[step][0] for a, b in curves]
        noise = statistics.median(math.hypot(a[step][1], b[step][1]) for a, b in curves)
        if not all(map(math.isfinite, diffs)):
            continue
        mean, half = statistics.fmean(diffs), _half_width(diffs, level, noise)
        out.steps.append(step)
        out.mean.append(mean)
        out.low.append(mean - half)
        out.high.append(mean + half)
        out.states.append(AHEAD if mean + half < 0 else BEHIND if mean - half > 0 else LEVEL)  # as the test would
    out.words = describe(out.steps, out.states, value, best)
    return out


def quality_curve(run: Path, metric: str) -> dict[int, tuple[float, float]]:
    """step -> (score, its se) from a run's quality.csv."""
    folder = RunFolder(run)
    columns = folder.read_columns(folder.quality_csv)
    if metric not in columns or "step" not in columns:
        return {}
    ses = columns.get(f"{metric}_se", [0.0] * len(columns["step"]))
    return {int(s): (v, 0.0 if math.isnan(e) else e) for s, v, e in zip(columns["step"], columns[metric], ses)}


def _half_width(diffs: list[float], level: float, noise: float) -> float:
    """Half the interval of the mean difference at `level`: t-based on the differences' spread, never
    narrower than the measurement noise allows."""
    from scipy.special import stdtrit

    n = len(diffs)
    if n < 2:
        return math.inf
    sd = max(statistics.stdev(diffs), noise)
    return float(stdtrit(n - 1, 1 - level / 2)) * sd / math.sqrt(n)


def describe(steps: list[int], states: list[str], value: str, best: str, unit: str = "step") -> str:
    """The course in words: where `value` is ahead of or behind `best`, and whether that flips."""
    if not steps:
        return ""
    if all(s == LEVEL for s in states):
        return (f"{value} is level with {best} at each of {len(steps)} evaluations ({unit}s {steps[0]}-{steps[-1]})"
                if len(steps) > 1 else f"{value} is level with {best} at its one evaluation ({unit} {steps[0]})")
    final, start = states[-1], len(states) - 1
    while start > 0 and states[start - 1] == final:
        start -= 1
    if final != LEVEL:
        words = f"{value} is {_relation(final)} {best} " + (
            "at every evaluation" if start == 0 else f"at the last evaluation only ({unit} {steps[start]})"
            if start == len(steps) - 1 else f"from {unit} {steps[start]} to the end")
    else:
        lead = [i for i, s in enumerate(states) if s != LEVEL]
        where = (f"{unit} {steps[lead[0]]}" if lead[0] == lead[-1] else f"{unit}s {steps[lead[0]]}-{steps[lead[-1]]}")
        words = f"{value} is {_relation(states[lead[0]])} {best} early ({where}), level at the end"
    if {AHEAD, BEHIND} <= set(states):
        words += "; it is ahead at some evaluations and behind at others: the verdict flips during training"
    return words


def _relation(state: str) -> str:
    return "ahead of" if state == AHEAD else "behind"


def kind_of_effect(c: Course) -> str:
    """What a change did over training against its base: learns faster (ahead before the last
    evaluation), ends better (ahead at the last), both, their opposites, or nothing beyond noise."""
    if not c.states:
        return ""
    early, final = set(c.states[:-1]), c.states[-1]
    faster = {AHEAD: "learns faster", BEHIND: "learns slower"}.get(next(iter(early - {LEVEL})), "") \
        if len(early - {LEVEL}) == 1 else "flips" if {AHEAD, BEHIND} <= early else ""
    end = {AHEAD: "ends better", BEHIND: "ends worse"}.get(final, "ends level" if faster else "")
    return " and ".join(w for w in (faster, end) if w) or "no difference beyond noise"
