"""The state of the runs behind a verdict: a comparison of broken GANs (collapsed, diverged, failed,
never better than at their first evaluation) or of runs stopped before their planned steps says so
beside its verdict, in words (docs/statistics.md, "Broken and unfinished runs")."""

from __future__ import annotations

import math
from typing import Optional

from ganlab.judging.over_training import quality_curve
from ganlab.quality.scores import as_loss
from ganlab.record.catalog import RunRecord

BROKEN = ("failed", "diverged", "untrained", "collapsed")  # the worst first: a run is named by the first that holds
COLLAPSED_BELOW = 0.5  # the final samples' spread, as a share of the data's, below which a diagnosed collapse stands
WORDS = {"failed": "failed", "diverged": "diverged", "collapsed": "collapsed to a few modes",
         "untrained": "never improved on their first evaluation"}
UNFINISHED = ("stopped", "interrupted", "running")


def broken_state(run: RunRecord) -> Optional[str]:
    """failed | diverged | untrained (its best score no better, beyond twice the noise of the difference,
    than its first evaluation, and not at the floor) | collapsed (diagnosed mode collapse, and its last
    samples still spread less than COLLAPSED_BELOW of the data's) | None: healthy."""
    if run.status in ("failed", "diverged"):
        return run.status
    if "divergence" in run.summary.diagnoses:
        return "diverged"
    if _untrained(run):
        return "untrained"
    spread = run.summary.final_scores.get("diversity_ratio")
    recovered = isinstance(spread, (int, float)) and spread >= COLLAPSED_BELOW
    if "mode_collapse" in run.summary.diagnoses and not recovered:
        return "collapsed"
    return None


def _untrained(run: RunRecord) -> bool:
    metric = run.summary.metric
    curve = quality_curve(run.path, metric) if metric else {}
    if len(curve) < 2 or metric in run.summary.at_the_floor.get("at", []):
        return False
    (first, first_se), (best, best_se) = curve[min(curve)], min(curve.values(), key=lambda v: as_loss(metric, v[0]))
    return as_loss(metric, first) - as_loss(metric, best) <= 2 * math.hypot(first_se, best_se)


def unfinished(run: RunRecord) -> Optional[str]:
    """Why a run is not finished, in words ("stopped at step 1,235 of 1,500"), or None."""
    total, done = run.summary.get("total_steps"), run.summary.get("steps_done")
    if run.status in UNFINISHED or (run.status == "completed" and total and done is not None and done < total):
        where = f" at step {done:,} of {total:,}" if total and done is not None else ""
        return f"{run.status}{where}"
    return None


def states_in_words(groups: dict[str, list[RunRecord]], key: str) -> str:
    """What is broken among the runs of each value of `key`, e.g. "every run of both values collapsed to a
    few modes: this compares failed settings" or "2 of 3 runs of loss=wgan_gp diverged"; "" when none is."""
    counted = {value: [broken_state(r) for r in runs] for value, runs in groups.items()}
    if all(all(counted[v]) for v in counted) and len(counted) > 1:
        kinds = {s for states in counted.values() for s in states}
        how = WORDS[kinds.pop()] if len(kinds) == 1 else "are broken (" + ", ".join(
            f"{s}: {sum(st == s for states in counted.values() for st in states)}" for s in BROKEN
            if any(s in states for states in counted.values())) + ")"
        every = "both values" if len(counted) == 2 else f"all {len(counted)} values"
        return f"every run of {every} {how}: this compares failed settings"
    parts = []
    for value, states in counted.items():
        for s in BROKEN:
            n = states.count(s)
            if n:
                runs = "every run" if n == len(states) else f"{n} of {len(states)} runs"
                parts.append(f"{runs} of {key}={value} {WORDS[s]}")
    return "; ".join(parts)


def all_broken(runs: list[RunRecord]) -> bool:
    return bool(runs) and all(broken_state(r) for r in runs)
