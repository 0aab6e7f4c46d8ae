"""`ganlab compare`: which change helped, and whether the noise can explain it.

Each swept key's values are compared like with like: within cells that hold every other swept key
and the seed equal (paired), by the median paired difference of the best primary score, with a
bootstrap interval and a paired test (stats.paired_test) whose level is Bonferroni-corrected over the
key's pairs of values, so that picking the best from the data keeps the false "better/worse" rate at
5% whatever the seed and measurement noise (tests/test_calibration.py simulates it). Failed and
diverged runs rank worst and are named, never averaged. Interactions, confounds (compute,
yardstick, runs from several sweeps) and disagreeing secondary scores are said in words."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from PIL import Image  # noqa: E402

from ganlab.judging import stats  # noqa: E402
from ganlab.judging.over_training import Course, course, kind_of_effect  # noqa: E402
from ganlab.quality.scores import as_loss, better  # noqa: E402
from ganlab.record.catalog import RunRecord, origin, swept_values  # noqa: E402
from ganlab.record.run_folder import RunFolder  # noqa: E402

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


@dataclass
class Comparison:
    metric: str
    runs: list[RunRecord]  # the runs with a score
    factors: dict[str, Factor]
    labels: dict[Path, str]  # run -> its swept values, e.g. "optim.lr=0.0001 seed=2"
    failed: list[RunRecord]  # failed or diverged: the worst rank
    skipped: list[RunRecord]  # neither scored nor failed (running, stopped, metrics off)
    warnings: list[str]

    def as_json(self) -> dict[str, Any]:
        """All of it as plain JSON (a failed value's +inf and an unknown interval become null)."""
        return _plain({"metric": self.metric, "runs": len(self.runs) + len(self.failed),
                       "failed": [r.path.name for r in self.failed], "skipped": [r.path.name for r in self.skipped],
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


def compare(runs: list[RunRecord], alpha: float = stats.ALPHA) -> Comparison:
    """Rank each swept key's values and test each against the best, holding the key's false
    "better/worse" rate at `alpha` (a study run until settled passes the level of its look)."""
    scored = [r for r in runs if r.status not in FAILED and _finite(r.best.get("score"))]
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
    return Comparison(metric, scored, factors, labels, failed, skipped, _warnings(ranked, swept))


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
                                      [r.path.name for r in group if r.status in FAILED]))
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
    return Factor(key, summaries, effects, spread)


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
    yardsticks = {r.summary.yardstick for r in runs if r.quality}
    if len(yardsticks - {None}) > 1:
        named = ", ".join(sorted(yardsticks - {None}))
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


def _num(x: float, signed: bool = False) -> str:
    """A score for the table; +inf is a failed run's rank (a median of +inf: at least half failed)."""
    if x == math.inf:
        return "failed"
    return f"{x:+.3g}" if signed else f"{x:.4g}"


def format_comparison(c: Comparison) -> str:
    lines = [f"{len(c.runs) + len(c.failed)} runs compared by their best {c.metric} ({better(c.metric)})"]
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
        lines.append(f"left out (no quality score): {run.path.name} [{run.status}]")
    return "\n".join(lines)


def verdicts(c: Comparison) -> list[str]:
    """The verdict on each swept key, one line each."""
    return [verdict(f) for f in c.factors.values()]


def verdict(f: Factor) -> str:
    best = f.values[0].value
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
CURVES = ("loss_d", "loss_g", "acc_real", "acc_fake")  # metrics.csv columns drawn beside the quality score


def _setting(c: Comparison, path: Path) -> str:
    """A run's swept values less its seed: the runs of one setting share a colour and a legend entry."""
    return " ".join(p for p in c.labels[path].split(" ") if p.partition("=")[0] not in REPEAT_KEYS)


def _colours(c: Comparison) -> dict[Path, tuple]:
    groups = sorted({_setting(c, r.path) for r in c.runs})
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    return {r.path: cmap(groups.index(_setting(c, r.path)) % cmap.N) for r in c.runs}


def plot_curves(c: Comparison, path: Path) -> Path:
    """Losses, D accuracies and the quality score of every run over training, one colour per setting."""
    colours, seen = _colours(c), set()
    fig, axes = plt.subplots(1, 5, figsize=(22, 4))
    for run in c.runs:
        folder = RunFolder(run.path)
        metrics, quality = folder.read_columns(folder.metrics_csv), folder.read_columns(folder.quality_csv)
        group = _setting(c, run.path)
        label = None if group in seen or not group else group
        seen.add(group)
        for ax, key in zip(axes, CURVES):
            if key in metrics:
                ax.plot(metrics["step"], metrics[key], color=colours[run.path], lw=1, alpha=0.8, label=label)
        if c.metric in quality:
            axes[4].plot(quality["epoch"], quality[c.metric], color=colours[run.path], lw=1.2, marker=".", label=label)
    for ax, title in zip(axes, [*CURVES, f"{c.metric} ({better(c.metric)})"]):
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.set_xlabel("epoch" if ax is axes[4] else "G step")
    axes[4].set_yscale("log")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_grids(c: Comparison, path: Path, limit: int = 24) -> Path:
    """The sample grid of each run's best epoch, side by side, titled by its setting and score."""
    runs = sorted(c.runs, key=lambda r: c.labels[r.path])[:limit]
    cols = min(len(runs), 6)
    rows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, run in zip(axes.flat, runs):
        grid = run.path / run.best.get("samples", "")
        if grid.is_file():
            ax.imshow(Image.open(grid).convert("RGB"))
        ax.set_title(f"{c.labels[run.path]}\n{c.metric} {run.best['score']:.4g} (epoch {run.best['epoch']})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_heatmap(c: Comparison, path: Path) -> Optional[Path]:
    """Median score over seeds for each pair of values of two swept keys."""
    keys = list(c.factors)
    if len(keys) != 2:
        return None
    swept = join_aliased(swept_values(c.runs + c.failed))  # the runs the factors were found in
    rows_v, cols_v = ([v.value for v in c.factors[k].values] for k in keys)
    rows_v, cols_v = sorted(rows_v), sorted(cols_v)
    cells: dict[tuple[str, str], list[float]] = {}
    for run in c.runs:
        cells.setdefault((swept[keys[0]][run.path], swept[keys[1]][run.path]), []).append(float(run.best["score"]))
    grid = [[statistics.median(cells[(r, k)]) if (r, k) in cells else float("nan") for k in cols_v] for r in rows_v]
    fig, ax = plt.subplots(figsize=(1.6 * len(cols_v) + 2.5, 1.0 * len(rows_v) + 1.8))
    image = ax.imshow(grid, cmap="viridis_r")
    ax.set(xticks=range(len(cols_v)), xticklabels=cols_v, yticks=range(len(rows_v)), yticklabels=rows_v,
           xlabel=keys[1], ylabel=keys[0], title=f"median best {c.metric} ({better(c.metric)})")
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if math.isfinite(value):
                ax.text(j, i, f"{value:.3g}", ha="center", va="center", color="white", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_verdict(c: Comparison, path: Path) -> Optional[Path]:
    """The verdict as a figure: per key, each value's runs as dots (coloured by seed, failures as x at
    the top) with the median and its interval; beside it each value's paired differences to the best."""
    if not c.factors:
        return None
    ranked = c.runs + c.failed
    swept = join_aliased(swept_values(ranked))
    seeds = sorted({swept["seed"][r.path] for r in ranked}) if "seed" in swept else []
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(c.factors), 2, figsize=(11, 3.5 * len(c.factors)), squeeze=False)
    finite = [score_of(r) for r in c.runs]
    top = max(finite) * 1.15 if finite else 1.0
    for (key, f), (left, right) in zip(c.factors.items(), axes):
        for i, v in enumerate(f.values):
            for run in (r for r in ranked if swept[key][r.path] == v.value):
                colour = cmap(seeds.index(swept["seed"][run.path]) % 10) if seeds else "tab:blue"
                failed = score_of(run) == math.inf
                left.scatter(i + (seeds.index(swept["seed"][run.path]) - len(seeds) / 2) * 0.05 if seeds else i,
                             top if failed else score_of(run), color=colour, marker="x" if failed else "o", s=28)
            if math.isfinite(v.median):
                lo, hi = (min(x, top) for x in v.interval)
                left.errorbar(i + 0.25, v.median, yerr=[[v.median - lo], [hi - v.median]], fmt="_", color="k",
                              ms=14, capsize=4)
        left.set(xticks=range(len(f.values)), xticklabels=[v.value for v in f.values], xlim=(-0.5, len(f.values) - 0.3),
                 title=f"{key}:\nbest {c.metric} per run, median and 95% interval", ylabel=c.metric)
        right.axhline(0, color="0.5", lw=1)
        shown = [d for e in f.effects for d in e.differences if math.isfinite(d)]
        ceiling = max(shown + [0.0]) * 1.15 + 1e-9
        for j, e in enumerate(f.effects):
            colour = {"worse": "tab:red", "better": "tab:green", "interaction": "tab:orange"}.get(e.verdict, "0.4")
            for d in e.differences:
                right.scatter(j - 0.12, d if math.isfinite(d) else ceiling, color=colour, alpha=0.6, s=18,
                              marker="o" if math.isfinite(d) else "x")
            if math.isfinite(e.median_diff) and all(map(math.isfinite, e.interval)):
                lo, hi = e.interval
                right.errorbar(j, e.median_diff, yerr=[[e.median_diff - lo], [hi - e.median_diff]], fmt="_",
                               color=colour, ms=14, capsize=4)
            label_y = e.median_diff if math.isfinite(e.median_diff) else ceiling
            right.annotate(e.verdict, (j, label_y), fontsize=8, xytext=(8, 0), textcoords="offset points",
                           color=colour)
        right.set(xticks=range(len(f.effects)), xticklabels=[e.value for e in f.effects],
                  xlim=(-0.6, len(f.effects) - 0.4),
                  title=f"paired difference to\n{key}={f.values[0].value} (lower is better)")  # as_loss
        for ax in (left, right):
            ax.grid(alpha=0.3)
    if seeds:
        handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(i % 10), label=f"seed {s}")
                   for i, s in enumerate(seeds)]
        axes[0, 0].legend(handles=handles, fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_over_training(c: Comparison, path: Path) -> Optional[Path]:
    """Per key, each value's mean paired difference to the best against the step, with its band at the
    verdict's level: below zero the value is ahead."""
    factors = [(k, f) for k, f in c.factors.items() if any(e.course and e.course.steps for e in f.effects)]
    if not factors:
        return None
    fig, axes = plt.subplots(1, len(factors), figsize=(6.5 * len(factors), 4), squeeze=False)
    for ax, (key, f) in zip(axes[0], factors):
        ax.axhline(0, color="0.4", lw=1)
        for i, e in enumerate(x for x in f.effects if x.course and x.course.steps):
            colour = plt.get_cmap("tab10")(i % 10)
            ax.plot(e.course.steps, e.course.mean, color=colour, marker=".", label=f"{e.value}: {e.kind}")
            ax.fill_between(e.course.steps, e.course.low, e.course.high, color=colour, alpha=0.2, lw=0)
        ax.set(xlabel="G step", ylabel=f"{c.metric} difference to the best",
               title=f"{key}: each value minus {key}={f.values[0].value}\n(below 0: ahead; band: {f.effects[0].level:.3g}"
                     f"-level interval at each step)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# Every file compare writes into its folder (a user-named --out must not hold one unless --force).
FILES = ("compare.txt", "curves.png", "grids.png", "over_training.png", "verdict.png", "heatmap.png")


def write_figures(c: Comparison, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    figures = [plot_curves(c, folder / "curves.png"), plot_grids(c, folder / "grids.png")]
    over_training = plot_over_training(c, folder / "over_training.png")
    figures += [over_training] if over_training else []
    verdict_png = plot_verdict(c, folder / "verdict.png")
    figures += [verdict_png] if verdict_png else []
    heatmap = plot_heatmap(c, folder / "heatmap.png")
    return figures + ([heatmap] if heatmap else [])
