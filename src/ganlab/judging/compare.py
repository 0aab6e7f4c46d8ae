"""`ganlab compare`: which change helped, and whether the noise can explain it.

Each swept key's values are compared like with like: within cells that hold every other swept key
and the seed equal (paired), by the median paired difference of the best primary score, with a
bootstrap interval and a paired test (stats.paired_test) whose level is Bonferroni-corrected over the
key's pairs of values, so that picking the best from the data keeps the false "better/worse" rate at
5% whatever the seed and measurement noise (tests/test_calibration.py simulates it). Failed and
diverged runs rank worst and are named, never averaged. Interactions, confounds (compute,
yardstick, runs from several sweeps) and disagreeing secondary scores are found here; verdict.py says
it in words and figures.py draws it."""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from ganlab.judging import stats
from ganlab.judging.over_training import Course, course, kind_of_effect
from ganlab.judging.run_states import all_broken, states_in_words, unfinished
from ganlab.quality.scores import as_loss
from ganlab.record.catalog import RunRecord, origin, swept_values
from ganlab.record.run_folder import RunFolder

REPEAT_KEYS = ("seed",)  # keys that repeat a run rather than change it
FAILED = ("failed", "diverged")  # runs that count as the worst rank
# Secondary scores, checked for agreement with the primary (their direction: quality.scores).
SECONDARY = ("kid", "precision", "recall", "coverage", "classes_covered", "hq_share", "modes_covered")
COMPUTE_KEYS = ("trainer.n_critic", "trainer.steps", "trainer.epochs", "trainer.batch_size")


@dataclass
class ValueSummary:
    value: str
    n: int
    median: float  # of the best primary score over the value's runs (failures as +inf)
    interval: tuple[float, float]  # bootstrap 95% interval of that median
    failed: list[str] = field(default_factory=list)  # runs of this value that failed or diverged
    broken: bool = False  # every run of it is broken (run_states): never "best" without the word


@dataclass
class Effect:
    """One value against the best value of its key: score(value) - score(best), lower is better."""
    value: str
    test: str  # paired | unpaired | none
    n_pairs: int
    median_diff: float
    interval: tuple[float, float]
    p_value: Optional[float]
    measurement_noise: float  # median over pairs of 2 x the standard error of a difference
    verdict: str  # better | worse | within noise | interaction
    why: str
    method: str = "none"  # the test: t-test | sign-flip | Mann-Whitney | none
    level: float = stats.ALPHA  # the p-value it was held to (Bonferroni over the key's pairs of values)
    seeds_needed: Optional[int] = None
    agree: list[str] = field(default_factory=list)  # secondary scores ranking the two values the same way
    disagree: list[str] = field(default_factory=list)
    by_cell: dict[str, float] = field(default_factory=dict)  # median difference per setting of the other keys
    differences: list[float] = field(default_factory=list)  # each pair's difference (+inf: only this value failed)
    course: Optional[Course] = None  # the paired difference at every evaluation the pairs share
    kind: str = ""  # learns faster / ends better / both / ... (over_training.kind_of_effect)


@dataclass
class Factor:
    key: str
    values: list[ValueSummary]  # best first
    effects: list[Effect]  # each other value against the best
    spread_over: str  # what the spread is over, in words
    states: str = ""  # what is broken among its values' runs, in words (run_states.states_in_words)


@dataclass
class Comparison:
    metric: str
    runs: list[RunRecord]  # the runs with a score
    factors: dict[str, Factor]
    labels: dict[Path, str]  # run -> its swept values, e.g. "optim.lr=0.0001 seed=2"
    swept: dict[str, dict[Path, str]]  # swept key (aliased keys joined) -> run -> its value
    failed: list[RunRecord]  # failed or diverged: the worst rank
    skipped: list[RunRecord]  # neither scored nor failed (running, stopped, metrics off)
    warnings: list[str]
    unfinished: dict[Path, str] = field(default_factory=dict)  # run -> how far it got, for runs stopped early
    at_step: Optional[int] = None  # every run was scored at its best up to this step (at_common_step)

    def as_json(self) -> dict[str, Any]:
        """All of it as plain JSON (a failed value's +inf and an unknown interval become null)."""
        return _plain({"metric": self.metric, "runs": len(self.runs) + len(self.failed),
                       "failed": [r.path.name for r in self.failed], "skipped": [r.path.name for r in self.skipped],
                       "unfinished": {p.name: why for p, why in self.unfinished.items()}, "at_step": self.at_step,
                       "warnings": self.warnings, "keys": {k: asdict(f) for k, f in self.factors.items()}})


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _finite(score: Any) -> bool:
    """A score to rank by: a NaN (an evaluation that broke) is no score."""
    return isinstance(score, (int, float)) and math.isfinite(score)


def score_of(run: RunRecord) -> float:
    """The run's best primary score, oriented so that lower is better; a failed run ranks worst."""
    if run.status in FAILED or run.best.get("score") is None:
        return math.inf
    return as_loss(run.summary.metric, float(run.best["score"]))


def se_of(run: RunRecord, metric: str) -> float:
    value = run.summary.best_scores.get(f"{metric}_se")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def compare(runs: list[RunRecord], alpha: float = stats.ALPHA, at_common_step: bool = False) -> Comparison:
    """Rank each swept key's values and test each against the best, holding the key's false
    "better/worse" rate at `alpha` (a study run until settled passes the level of its look). A run
    stopped before its planned steps is left out, unless `at_common_step`: then every run is scored
    by its best up to the last evaluation that all of them reached."""
    stopped_early = {r.path: why for r in runs if (why := unfinished(r)) and r.status not in FAILED}
    at_step = None
    if at_common_step:
        runs, at_step = scored_at_common_step(runs)
    scored = [r for r in runs if r.status not in FAILED and _finite(r.best.get("score"))
              and (at_common_step or r.path not in stopped_early)]
    failed = [r for r in runs if r.status in FAILED]
    skipped = [r for r in runs if r not in scored and r not in failed]
    if not scored:
        raise ValueError("none of these runs has a quality score to compare (runs with metrics.enabled=false, "
                         "that failed before their first evaluation, or whose scores are NaN)")
    metrics = {r.summary.metric for r in scored}
    if len(metrics) > 1:
        raise ValueError(f"these runs are scored by different metrics ({', '.join(sorted(metrics))}): "
                         f"compare runs of one kind of data")
    metric, ranked = metrics.pop(), scored + failed
    swept = swept_values(ranked)
    labels = {r.path: " ".join(f"{k}={swept[k][r.path]}" for k in swept) or r.path.name for r in ranked}
    by_factor = join_aliased(swept)
    factors = {key: _factor(key, ranked, by_factor, metric, alpha) for key in by_factor if key not in REPEAT_KEYS}
    return Comparison(metric, scored, factors, labels, by_factor, failed, skipped, _warnings(ranked, swept),
                      stopped_early, at_step)


def scored_at_common_step(runs: list[RunRecord]) -> tuple[list[RunRecord], Optional[int]]:
    """The runs, each with its best scores up to the last evaluation step that every one reached (from
    quality.csv), and that step; runs without evaluations are left as they are."""
    metric = next((r.summary.metric for r in runs if r.summary.metric), None)
    curves = {r.path: RunFolder(r.path).read_columns(RunFolder(r.path).quality_csv) for r in runs}
    reached = [max(c["step"]) for c in curves.values() if c.get("step") and metric in c]
    if not metric or not reached:
        return runs, None
    step = int(min(reached))
    out = []
    for run in runs:
        columns = curves[run.path]
        rows = [i for i, s in enumerate(columns.get("step", [])) if s <= step and math.isfinite(columns[metric][i])]
        if run.status in FAILED or not rows:
            out.append(run)
            continue
        i = min(rows, key=lambda j: as_loss(metric, columns[metric][j]))
        scores = {k: v[i] for k, v in columns.items()}
        summary = copy.deepcopy(dict(run.summary))
        summary.setdefault("quality", {})["best"] = {"epoch": scores.get("epoch"), "step": int(scores["step"]),
                                                     "metric": metric, "score": scores[metric], "scores": scores}
        out.append(dataclasses.replace(run, summary=summary))
    return out, step


def join_aliased(swept: dict[str, dict[Path, str]]) -> dict[str, dict[Path, str]]:
    """The swept keys (swept_values), with keys that always change together joined into one factor: runs of
    `+exp=resnet trainer.steps=692` against runs of neither give "exp + trainer.steps" with the values
    "resnet, 692" and "(default), (default)", so that one change is compared (paired by seed), not two
    that the runs cannot tell apart."""
    groups: dict[frozenset, list[str]] = {}  # the runs each value of a key picks out -> the keys that pick them
    for key, values in swept.items():
        if key not in REPEAT_KEYS:  # a seed repeats a run: never joined to a change
            by_value: dict[str, set[Path]] = {}
            for path, value in values.items():
                by_value.setdefault(value, set()).add(path)
            groups.setdefault(frozenset(frozenset(paths) for paths in by_value.values()), []).append(key)
    joined = {" + ".join(keys): {path: ", ".join(swept[k][path] for k in keys) for path in swept[keys[0]]}
              for keys in groups.values()}
    return {**joined, **{key: swept[key] for key in REPEAT_KEYS if key in swept}}


def _factor(key: str, runs: list[RunRecord], swept: dict[str, dict[Path, str]], metric: str,
            alpha: float) -> Factor:
    by_value: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_value.setdefault(swept[key][run.path], []).append(run)
    summaries = []
    for value, group in by_value.items():
        scores = [score_of(r) for r in group]
        summaries.append(ValueSummary(value, len(group), statistics.median(scores), stats.median_interval(scores),
                                      [r.path.name for r in group if r.status in FAILED], all_broken(group)))
    summaries.sort(key=lambda v: (v.median, v.value))
    best = summaries[0].value
    others = [k for k in swept if k != key]
    seeds = sorted({swept["seed"][r.path] for r in runs}) if "seed" in swept else []
    context = [k for k in others if k not in REPEAT_KEYS]
    cells = len({tuple(swept[k][r.path] for k in context) for r in runs})
    spread = (f"{len(seeds)} seeds" + (f" in {cells} settings of {', '.join(context)}" if context else "")
              if seeds else f"the other swept settings ({cells} cells of {', '.join(context)})" if context
              else "nothing: one run per value, only each score's measurement noise")
    level = stats.pairwise_level(len(summaries), alpha)
    effects = [_effect(v.value, best, key, runs, swept, others, context, metric, level) for v in summaries[1:]]
    return Factor(key, summaries, effects, spread, states_in_words(by_value, key))


def _cell(run: RunRecord, keys: list[str], swept: dict[str, dict[Path, str]]) -> tuple[str, ...]:
    return tuple(f"{k}={swept[k][run.path]}" for k in keys)


def _effect(value: str, best: str, key: str, runs: list[RunRecord], swept: dict[str, dict[Path, str]],
            others: list[str], context: list[str], metric: str, level: float) -> Effect:
    cells: dict[tuple[str, ...], dict[str, list[RunRecord]]] = {}
    for run in runs:
        cells.setdefault(_cell(run, others, swept), {}).setdefault(swept[key][run.path], []).append(run)
    pairs = [(c[value], c[best], cell) for cell, c in cells.items() if value in c and best in c]
    if not pairs:
        return _unpaired(value, best, key, runs, swept, metric, level)
    diffs, noises, contexts = [], [], []
    for mine, theirs, cell in pairs:
        a, b = statistics.median(map(score_of, mine)), statistics.median(map(score_of, theirs))
        diffs.append(0.0 if a == b else a - b)  # both failed: a tie
        noises.append(math.hypot(se_of(mine[0], metric), se_of(theirs[0], metric)))
        contexts.append(" ".join(c for c in cell if c.split("=")[0] in context))
    finite = [d if math.isfinite(d) else math.copysign(1e12, d) for d in diffs]
    median, noise = statistics.median(diffs), statistics.median(noises)
    interval = tuple(math.copysign(math.inf, x) if abs(x) >= 1e11 else x for x in stats.median_interval(finite))
    test = stats.paired_test(diffs, level, noise)
    effect = Effect(value, "paired", len(pairs), median, interval, test.p, 2 * noise, "within noise", "",
                    method=test.method, level=level, differences=diffs)
    by_context: dict[str, list[float]] = {}
    for d, c in zip(diffs, contexts):
        by_context.setdefault(c, []).append(d)
    effect.by_cell = {c: statistics.median(v) for c, v in by_context.items() if c}
    beyond = {c: stats.paired_test(v, level, noise) for c, v in by_context.items() if c}
    helps = [c for c, t in beyond.items() if t.significant and statistics.median(by_context[c]) < 0]
    hurts = [c for c, t in beyond.items() if t.significant and statistics.median(by_context[c]) > 0]
    if helps and hurts:
        effect.verdict = "interaction"
        effect.why = (f"{key}={value} beats {key}={best} beyond noise with {'; '.join(helps)} but loses with "
                      f"{'; '.join(hurts)}: see the table by cell rather than one verdict")
    elif test.significant and median != 0:
        effect.verdict = "worse" if median > 0 else "better"
        effect.why = f"{test.method} p={test.p:.2g} <= {level:.3g} over {len(pairs)} pairs"
    else:
        effect.why = _why_within_noise(test, diffs, noise)
        needed = stats.seeds_needed(median, max(statistics.stdev(finite), noise), level) \
            if len(finite) > 1 and all(map(math.isfinite, diffs)) else None
        effect.seeds_needed = needed
    _agreement(effect, pairs, metric)
    effect.course = course([(mine[0].path, theirs[0].path) for mine, theirs, _ in pairs], metric, level,
                           f"{key}={value}", f"{key}={best}")
    effect.kind = kind_of_effect(effect.course)
    return effect


def _why_within_noise(test: stats.PairedTest, diffs: list[float], noise: float) -> str:
    n = len(diffs)
    if test.method == "none":
        return "one pair: no spread to test against"
    if not test.reachable:
        return (f"a {test.method} test over {n} pairs cannot reach p<={test.level:.3g} (it needs "
                f"{stats.min_pairs_for(test.level)} pairs{', as a failed run has no score to subtract' if not all(map(math.isfinite, diffs)) else ''})")
    spread = statistics.stdev(diffs) if all(map(math.isfinite, diffs)) else math.inf
    if noise > spread:
        return (f"{test.method} p={test.p:.2g} > {test.level:.3g} over {n} pairs, whose differences lie within the "
                f"measurement noise ({noise:.3g} per difference)")
    return f"{test.method} p={test.p:.2g} > {test.level:.3g} over {n} pairs"


def _unpaired(value: str, best: str, key: str, runs: list[RunRecord], swept: dict[str, dict[Path, str]],
              metric: str, level: float) -> Effect:
    a = [score_of(r) for r in runs if swept[key][r.path] == value]
    b = [score_of(r) for r in runs if swept[key][r.path] == best]
    median = statistics.median(a) - statistics.median(b)
    p = stats.rank_test_p(a, b) if len(a) > 1 and len(b) > 1 else None
    effect = Effect(value, "unpaired" if p is not None else "none", 0, median, (math.nan, math.nan), p, 0.0,
                    "within noise", "no run of it shares its other settings and seed with a run of the best value",
                    method="Mann-Whitney" if p is not None else "none", level=level)
    if p is not None and p <= level:
        effect.verdict = "worse" if median > 0 else "better"
        effect.why = f"Mann-Whitney p={p:.2g} <= {level:.3g} over {len(a)} and {len(b)} runs (unpaired)"
    elif p is None:
        effect.why += "; one run each, so no test"
    return effect


def _agreement(effect: Effect, pairs: list, metric: str) -> None:
    """Which secondary scores rank the two values the same way as the primary (median paired sign)."""
    if effect.median_diff == 0 or not math.isfinite(effect.median_diff):
        return
    for name in SECONDARY:
        diffs = [as_loss(name, _secondary(mine, name) - _secondary(theirs, name)) for mine, theirs, _ in pairs]
        diffs = [d for d in diffs if math.isfinite(d)]
        if not diffs or statistics.median(diffs) == 0:
            continue
        worse = statistics.median(diffs) > 0
        (effect.agree if worse == (effect.median_diff > 0) else effect.disagree).append(name)


def _secondary(runs: list[RunRecord], name: str) -> float:
    values = [r.summary.best_scores.get(name) for r in runs]
    values = [float(v) for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else math.nan


def _warnings(runs: list[RunRecord], swept: dict[str, dict[Path, str]]) -> list[str]:
    out = []
    yardsticks = {r.summary.yardstick for r in runs if r.quality} - {None}
    if len(yardsticks) > 1:
        named = ", ".join(sorted(yardsticks))
        per_seed: dict[str, set] = {}
        for r in runs:
            per_seed.setdefault(swept.get("seed", {}).get(r.path), set()).add(r.summary.yardstick)
        if None not in per_seed and all(len(y - {None}) == 1 for y in per_seed.values()):
            out.append(f"note: the seeds were scored with {len(yardsticks)} yardsticks ({named}), each seed's runs "
                       f"with one (a study continued on another machine): the paired differences stand (a yardstick "
                       f"scales them by a few percent); scores of different seeds do not compare")
        else:
            out.append(f"WARNING: these runs were scored with different yardsticks ({named}): their scores are not "
                       f"comparable")
    configs = {r.path: _config(r.path) for r in runs}
    for key in COMPUTE_KEYS:
        values = {OmegaConf.select(c, key, default=None) for c in configs.values() if c is not None}
        if len(values) > 1:
            out.append(f"confound: the runs differ in compute, {key} = {', '.join(sorted(map(str, values)))}")
    sweeps = {origin(r) for r in runs}
    if len(sweeps) > 1:
        out.append(f"confound: the runs come from {len(sweeps)} sweeps or folders, whose fixed settings may differ "
                   f"(keys that vary: {', '.join(swept) or 'none'})")
    return out


def _config(path: Path):
    try:
        return OmegaConf.load(path / ".hydra" / "config.yaml")
    except Exception:  # a run without a readable config: no compute check for it
        return None
