"""A comparison in words: the table of each swept key's values and the one-line verdicts."""

from __future__ import annotations

import math

from ganlab.judging import stats
from ganlab.judging.compare import Comparison, Factor
from ganlab.quality.scores import better


def _num(x: float, signed: bool = False) -> str:
    """A score for the table; +inf is a failed run's rank (a median of +inf: at least half failed)."""
    if x == math.inf:
        return "failed"
    return f"{x:+.3g}" if signed else f"{x:.4g}"


def format_comparison(c: Comparison) -> str:
    lines = [f"{len(c.runs) + len(c.failed)} runs compared by their best {c.metric} ({better(c.metric)})"
             + (f" up to step {c.at_step:,}, the last evaluation every run reached"
                f"{f' ({len(c.unfinished)} of them unfinished)' if c.unfinished else ''}" if c.at_step else "")]
    lines += c.warnings
    if not c.factors:
        lines.append("no swept key besides the seed: nothing to rank")
    for key, f in c.factors.items():
        width = max(len(key), *(len(v.value) for v in f.values))
        lines += ["", f"{key}: spread over {f.spread_over}",
                  f"  {'value':<{width}}  {'n':>2}  {'median [95% interval]':>28}  vs the best (paired difference)"]
        effects = {e.value: e for e in f.effects}
        for v in f.values:
            spread = f"{_num(v.median)} [{_num(v.interval[0])}, {_num(v.interval[1])}]"
            e = effects.get(v.value)
            versus = "best" if e is None else (
                f"{_num(e.median_diff, True)} [{_num(e.interval[0], True)}, {_num(e.interval[1], True)}] "
                f"{e.verdict.upper()} "
                f"(paired: {e.why})" if e.test == "paired" else f"{_num(e.median_diff, True)} "
                f"{e.verdict.upper()} ({e.why})")
            lines.append(f"  {v.value:<{width}}  {v.n:>2}  {spread:>28}  {versus}")
            if e and e.seeds_needed:
                unit = "seeds" if "seed" in f.spread_over else "paired runs"
                lines.append(f"  {'':<{width}}      {stats.seeds_in_words(e.seeds_needed, e.median_diff, unit)}")
            if e and (e.agree or e.disagree):
                lines.append(f"  {'':<{width}}      other scores: {', '.join(e.agree) or 'none'} agree"
                             + (f"; {', '.join(e.disagree)} disagree" if e.disagree else ""))
            if e and e.course and e.course.words:
                lines.append(f"  {'':<{width}}      over training: {e.course.words}")
            if e and e.verdict == "interaction":
                lines += [f"  {'':<{width}}      {cell}: {d:+.3g}" for cell, d in e.by_cell.items()]
            if v.failed:
                lines.append(f"  {'':<{width}}      failed or diverged (ranked worst): {', '.join(v.failed)}")
        lines.append(verdict(f))
    for run in c.skipped:
        why = c.unfinished.get(run.path)
        lines.append(f"left out (unfinished: {why}; ganlab compare --at-common-step compares every run at the last "
                     f"evaluation all of them reached): {run.path.name}" if why
                     else f"left out (no quality score): {run.path.name} [{run.status}]")
    return "\n".join(lines)


def verdicts(c: Comparison) -> list[str]:
    """The verdict on each swept key, one line each."""
    return [verdict(f) for f in c.factors.values()]


def verdict(f: Factor) -> str:
    """The verdict on one key, with what is broken among its runs beside it (run_states)."""
    said = _verdict(f)
    return f"{said}; {f.states}" if f.states else said


def _verdict(f: Factor) -> str:
    best = f.values[0].value + (" (broken)" if f.values[0].broken else "")
    if not f.effects:
        return f"verdict: {f.key} took one value only"
    worse = [e.value for e in f.effects if e.verdict == "worse"]
    mixed = [e.value for e in f.effects if e.verdict == "interaction"]
    within = [e.value for e in f.effects if e.verdict in ("within noise", "better")]
    if mixed:
        return (f"verdict: {f.key} interacts with the other settings ({', '.join(mixed)} helps in some cells and "
                f"hurts in others, beyond noise): read the table by cell, not one winner")
    if len(worse) == len(f.effects):
        return f"verdict: {f.key}={best} is best; every other value is worse beyond noise"
    if worse:
        return (f"verdict: {f.key}={best} is best; beyond noise it beats {', '.join(worse)}; "
                f"{', '.join(within)} within noise")
    return f"verdict: {f.key}={best} scored best, but no difference is beyond noise"


# -------------------------------------------------------------------------------- figures
