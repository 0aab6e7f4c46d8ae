"""PacGAN's Table 1 (Lin et al. 2018), GAN and PacGAN2 on the ring and the grid, in rounds of stacks.

    python experiments/pacgan_table1/run.py --epochs 20     # train (or resume) every run to epoch 20
    python experiments/pacgan_table1/run.py --table-only    # the table at the last epoch all runs reached

Each run is a ganlab run in outputs/studies/pacgan_table1/<data>-pack<m>-seed<s> (+exp=pacgan_ring or
pacgan_grid, discriminator.pack=m, seed=s), and each cell's seeds train as one stack (trainer.stack): the
first round is one sweep (`ganlab train -m ... trainer.stack=N`), later rounds resume each cell's stack to
--epochs (`python -m ganlab.training.launch stack RUN_DIR... -- trainer.epochs=E`), --jobs stacks at a time,
so every cell advances together and a study longer than a session continues in the next. The table
(table.md) gives mean +- standard error over the seeds beside the paper's, at one epoch.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path("outputs/studies/pacgan_table1")
DATA = {"ring8": "pacgan_ring", "grid25": "pacgan_grid"}
# Table 1 of Lin et al. (2018): mean and standard error over 10 trials of modes, high-quality %, reverse KL.
PAPER = {("ring8", 1): ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09)), ("ring8", 2): ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
         ("grid25", 1): ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07)), ("grid25", 2): ((23.8, 0.7), (91.3, 0.8), (0.13, 0.04))}
SCORES = (("modes_covered", 1), ("hq_share", 100), ("mode_kl", 1))  # ganlab's score, and its scale in the paper


def run_dir(data: str, pack: int, seed: int) -> Path:
    return ROOT / f"{data}-pack{pack}-seed{seed}"


def first_round(seeds: list[int], epochs: int, jobs: int) -> int:
    """One sweep: every cell's seeds queued, then trained as a stack a cell, `jobs` stacks at a time."""
    command = ["ganlab", "train", "-m", f"+exp={','.join(DATA.values())}", "discriminator.pack=1,2",
               f"seed={','.join(map(str, seeds))}", f"trainer.stack={len(seeds)}", f"trainer.epochs={epochs}",
               "trainer.progress=false", "trainer.threads=1", f"hydra.launcher.n_jobs={jobs}",
               f"hydra.sweep.dir={ROOT}", "hydra.sweep.subdir=${data.name}-pack${discriminator.pack}-seed${seed}"]
    with open(ROOT / "rounds.log", "a") as log:
        return subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)


def advance(data: str, pack: int, seeds: list[int], epochs: int, jobs: int) -> int:
    """Resume one cell's stack to `epochs` epochs (its last checkpoint is one epoch old at most)."""
    command = [sys.executable, "-m", "ganlab.training.launch", "stack", "--jobs", str(jobs),
               *(str(run_dir(data, pack, s)) for s in seeds), "--", f"trainer.epochs={epochs}"]
    with open(ROOT / "rounds.log", "a") as log:
        return subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)


def quality_rows(folder: Path) -> dict[int, dict[str, float]]:
    path = folder / "quality.csv"
    if not path.exists():
        return {}
    with open(path) as f:
        return {int(row["epoch"]): {k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)}


def mean_se(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan


def table(seeds: list[int]) -> str:
    """Ours beside the paper's at the last evaluated epoch every run reached; a cell agrees when the two
    means are within two standard errors of their difference."""
    runs = {(d, m, s): quality_rows(run_dir(d, m, s)) for d in DATA for m in (1, 2) for s in seeds}
    common = set.intersection(*(set(rows) for rows in runs.values())) if runs else set()
    if not common:
        return "No epoch evaluated in every run yet.\n"
    epoch = max(common)
    lines = [f"At epoch {epoch} of 400 ({epoch * 1000:,} G steps), {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}) per row; "
             f"paper: 10 trials at 400 epochs. Mean +- standard error; 'agrees': |difference| < 2 x its standard error.",
             "", "| data | GAN | score | ganlab | paper | agrees |", "|---|---|---|---|---|---|"]
    for (data, pack), paper in PAPER.items():
        for (score, scale), (p_mean, p_se) in zip(SCORES, paper):
            mean, se = mean_se([runs[data, pack, s][epoch][score] * scale for s in seeds])
            agrees = abs(mean - p_mean) < 2 * math.hypot(se, p_se)
            lines.append(f"| {data} | {'GAN' if pack == 1 else f'PacGAN{pack}'} | {score} | {mean:.3g} +- {se:.2g} | "
                         f"{p_mean} +- {p_se} | {'yes' if agrees else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="train every run to this many epochs (paper: 400)")
    parser.add_argument("--seeds", type=int, default=5, help="trials per row: seeds 1..N (paper: 10)")
    parser.add_argument("--jobs", type=int, default=2, help="stacks trained at once (one thread each)")
    parser.add_argument("--table-only", action="store_true", help="write table.md from the runs as they stand")
    args = parser.parse_args()
    seeds = list(range(1, args.seeds + 1))
    ROOT.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        if not any(run_dir(d, m, s).is_dir() for d in DATA for m in (1, 2) for s in seeds):
            failed = first_round(seeds, args.epochs, args.jobs)
        else:
            cells = [(d, m) for d in DATA for m in (1, 2)]
            with ThreadPoolExecutor(args.jobs) as pool:
                failed = sum(pool.map(lambda c: advance(*c, seeds, args.epochs, args.jobs), cells))
        if failed:
            print(f"some runs failed (see {ROOT / 'rounds.log'})", file=sys.stderr)
    text = table(seeds)
    (ROOT / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
