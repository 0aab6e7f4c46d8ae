"""`ganlab compare`: which change helped. For each swept key, the quality score per value (mean
and spread over seeds), ranked, with the differences the spread cannot explain marked; curves
overlaid, best-epoch grids side by side, a heat map for two keys."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from ganlab.catalog import RunRecord, swept_values  # noqa: E402
from ganlab.run_folder import RunFolder  # noqa: E402

REPEAT_KEYS = ("seed",)  # keys that repeat a run rather than change it
SIGNIFICANCE = 0.05


@dataclass
class ValueStats:
    value: str
    scores: list[float]
    p_value: Optional[float] = None  # Welch's t-test against the best value

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def std(self) -> float:
        return statistics.stdev(self.scores) if len(self.scores) > 1 else float("nan")

    def verdict(self, best: "ValueStats") -> str:
        if self is best:
            return "best"
        diff = f"{self.mean - best.mean:+.4g}"
        if self.p_value is None:
            return f"{diff} (one run each: no spread to judge by)"
        if self.p_value < SIGNIFICANCE:
            return f"{diff} worse, beyond the spread of seeds (p={self.p_value:.3f})"
        return f"{diff}, within the spread of seeds (p={self.p_value:.2f})"


@dataclass
class Comparison:
    metric: str
    runs: list[RunRecord]
    factors: dict[str, list[ValueStats]]  # swept key -> its values, best first
    labels: dict[Path, str]  # run -> its swept values, e.g. "optim.lr=0.0001 seed=2"
    skipped: list[RunRecord]  # runs without a quality score (failed, diverged, metrics off)


def _welch_p(a: list[float], b: list[float]) -> Optional[float]:
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import ttest_ind

    p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else (1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0)


def compare(runs: list[RunRecord]) -> Comparison:
    scored = [r for r in runs if r.best.get("score") is not None]
    metrics = {r.quality.get("metric") for r in scored}
    if not scored:
        raise ValueError("none of these runs has a quality score to compare (runs with metrics.enabled=false, "
                         "or that failed before their first evaluation)")
    if len(metrics) > 1:
        raise ValueError(f"these runs are scored by different metrics ({', '.join(sorted(metrics))}): "
                         f"compare runs of one kind of data")
    swept = swept_values(scored)
    labels = {r.path: " ".join(f"{k}={swept[k][r.path]}" for k in swept) or r.path.name for r in scored}
    factors = {}
    for key in (k for k in swept if k not in REPEAT_KEYS):
        by_value: dict[str, list[float]] = {}
        for run in scored:
            by_value.setdefault(swept[key][run.path], []).append(float(run.best["score"]))
        stats = sorted((ValueStats(v, s) for v, s in by_value.items()), key=lambda s: s.mean)
        for other in stats[1:]:
            other.p_value = _welch_p(other.scores, stats[0].scores)
        factors[key] = stats
    return Comparison(metrics.pop(), scored, factors, labels, [r for r in runs if r not in scored])


def format_comparison(c: Comparison) -> str:
    lines = [f"{len(c.runs)} runs compared by their best {c.metric} (lower is better)"]
    if not c.factors:
        lines.append("no swept key besides the seed: nothing to rank")
    for key, stats in c.factors.items():
        width = max(len(key), *(len(s.value) for s in stats))
        lines += ["", f"{key:<{width}}  {'n':>2}  {c.metric + ' mean +- std':>26}  vs the best"]
        for s in stats:
            spread = f"{s.mean:.4g} +- {s.std:.2g}" if len(s.scores) > 1 else f"{s.mean:.4g}"
            lines.append(f"{s.value:<{width}}  {len(s.scores):>2}  {spread:>26}  {s.verdict(stats[0])}")
        lines.append(verdict(key, stats))
    for run in c.skipped:
        lines.append(f"left out (no quality score): {run.path.name} [{run.status}]")
    return "\n".join(lines)


def verdict(key: str, stats: list[ValueStats]) -> str:
    best = stats[0]
    clear = [s for s in stats[1:] if s.p_value is not None and s.p_value < SIGNIFICANCE]
    if len(stats) < 2:
        return f"verdict: {key} took one value only"
    if len(clear) == len(stats) - 1:
        return f"verdict: {key}={best.value} is best, and every other value is worse beyond the spread of seeds"
    if clear:
        return (f"verdict: {key}={best.value} is best; beyond the spread of seeds it beats "
                f"{', '.join(s.value for s in clear)}; the rest is within noise")
    return f"verdict: {key}={best.value} scored best, but no difference is beyond the spread of seeds"


# -------------------------------------------------------------------------------- figures
CURVES = ("loss_d", "loss_g", "acc_real", "acc_fake")  # metrics.csv columns drawn beside the quality score


def _colours(c: Comparison) -> dict[Path, tuple]:
    groups = sorted({c.labels[r.path].split(" seed=")[0] for r in c.runs})
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    return {r.path: cmap(groups.index(c.labels[r.path].split(" seed=")[0]) % cmap.N) for r in c.runs}


def plot_curves(c: Comparison, path: Path) -> Path:
    """Losses, D accuracies and the quality score of every run over training, one colour per setting."""
    colours, seen = _colours(c), set()
    fig, axes = plt.subplots(1, 5, figsize=(22, 4))
    for run in c.runs:
        folder = RunFolder(run.path)
        metrics, quality = folder.read_columns(folder.metrics_csv), folder.read_columns(folder.quality_csv)
        group = c.labels[run.path].split(" seed=")[0]
        label = None if group in seen else group
        seen.add(group)
        for ax, key in zip(axes, CURVES):
            if key in metrics:
                ax.plot(metrics["step"], metrics[key], color=colours[run.path], lw=1, alpha=0.8, label=label)
        if c.metric in quality:
            axes[4].plot(quality["epoch"], quality[c.metric], color=colours[run.path], lw=1.2, marker=".", label=label)
    for ax, title in zip(axes, [*CURVES, f"{c.metric} (lower is better)"]):
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
    """Mean score over seeds for each pair of values of two swept keys."""
    keys = list(c.factors)
    if len(keys) != 2:
        return None
    swept = swept_values(c.runs)
    rows_v, cols_v = ([s.value for s in c.factors[k]] for k in keys)
    rows_v, cols_v = sorted(rows_v), sorted(cols_v)
    cells: dict[tuple[str, str], list[float]] = {}
    for run in c.runs:
        cells.setdefault((swept[keys[0]][run.path], swept[keys[1]][run.path]), []).append(float(run.best["score"]))
    grid = [[statistics.fmean(cells[(r, k)]) if (r, k) in cells else float("nan") for k in cols_v] for r in rows_v]
    fig, ax = plt.subplots(figsize=(1.6 * len(cols_v) + 2.5, 1.0 * len(rows_v) + 1.8))
    image = ax.imshow(grid, cmap="viridis_r")
    ax.set(xticks=range(len(cols_v)), xticklabels=cols_v, yticks=range(len(rows_v)), yticklabels=rows_v,
           xlabel=keys[1], ylabel=keys[0], title=f"mean best {c.metric} (lower is better)")
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if math.isfinite(value):
                ax.text(j, i, f"{value:.3g}", ha="center", va="center", color="white", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_figures(c: Comparison, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    figures = [plot_curves(c, folder / "curves.png"), plot_grids(c, folder / "grids.png")]
    heatmap = plot_heatmap(c, folder / "heatmap.png")
    return figures + ([heatmap] if heatmap else [])
