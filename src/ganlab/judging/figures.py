"""A comparison's figures: curves, best grids, the verdict, the course over training, a heat map."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Optional

from PIL import Image

from ganlab.judging.compare import REPEAT_KEYS, Comparison, score_of
from ganlab.quality.scores import better
from ganlab.record.plotting import log_scale, plt
from ganlab.record.run_folder import RunFolder

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
    log_scale(axes[4])
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
    swept = c.swept
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
    swept = c.swept
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
