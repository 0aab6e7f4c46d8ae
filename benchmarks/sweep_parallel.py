"""Speed-up of a parallel sweep over the same sweep run one job after another, measured side by side.

    python benchmarks/sweep_parallel.py [--epochs 10] [--data digits]

Runs `ganlab train -m seed=1,2,3,4` three ways in fresh processes, each into its own temporary
folder: sequentially (hydra/launcher=basic, every job with all the cores' torch threads), in
parallel with ganlab's default launcher (joblib, one job per core, cores // jobs threads each),
and in parallel with 4 jobs at once (more jobs than cores). Prints wall times and ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def timed_sweep(label: str, extra: list[str], args) -> float:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "ganlab.cli", "train", "-m", "seed=1,2,3,4", f"data={args.data}",
                   f"trainer.epochs={args.epochs}", "trainer.progress=false", *extra]
        start = time.perf_counter()
        out = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{label} failed:\n{out.stderr[-2000:]}")
    print(f"{label:<44} {seconds:7.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per job (default 10)")
    parser.add_argument("--data", default="digits", help="dataset of every job (default digits)")
    args = parser.parse_args()
    cores = os.cpu_count()
    print(f"4-job sweep of DCGAN on {args.data}, {args.epochs} epochs each, {cores} cores")
    sequential = timed_sweep("one after another (basic, all threads each)", ["hydra/launcher=basic"], args)
    parallel = timed_sweep(f"parallel, default ({cores} jobs x 1 thread)", [], args)
    oversub = timed_sweep("parallel, 4 jobs x 1 thread", ["hydra.launcher.n_jobs=4"], args)
    print(f"speed-up of the default parallel sweep: {sequential / parallel:.2f}x")
    print(f"speed-up with 4 jobs at once:           {sequential / oversub:.2f}x")


if __name__ == "__main__":
    main()
