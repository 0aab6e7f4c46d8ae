"""Training speed beside busy processes: ganlab's default threads against 1 and 2 torch threads,
with OpenMP's passive wait policy (ganlab's default) and its active one, idle and beside one and two
busy processes, interleaved, median of the rounds.

    python benchmarks/threads_under_load.py [--rounds 3] [--epochs 10] [--busy 0 1 2]

Each run is `ganlab train` (digits, metrics off) in a fresh process; a busy process is a Python
loop. Prints each median and, per load, the default's time over the best setting's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SETTINGS = {  # label -> (extra overrides, OMP_WAIT_POLICY)
    "default (passive wait)": ([], "PASSIVE"),
    "threads=1 (passive)": (["trainer.threads=1"], "PASSIVE"),
    "threads=2 (passive)": (["trainer.threads=2"], "PASSIVE"),
    "default, active wait": ([], "ACTIVE"),
}


def timed_run(extra: list[str], policy: str, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "ganlab.cli", "train", f"trainer.epochs={epochs}", "trainer.progress=false",
                   "metrics.enabled=false", *extra]
        start = time.perf_counter()
        out = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                             env={**os.environ, "OMP_WAIT_POLICY": policy})
        seconds = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{extra} failed:\n{out.stderr[-2000:]}")
    return seconds


def processor() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown processor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2], help="busy processes beside the runs")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores ({processor()}); digits, {args.epochs} epochs, metrics off; "
          f"median of {args.rounds} rounds")
    for busy in args.busy:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            times: dict[str, list[float]] = {label: [] for label in SETTINGS}
            for _ in range(args.rounds):
                for label, (extra, policy) in SETTINGS.items():
                    times[label].append(timed_run(extra, policy, args.epochs))
        finally:
            for hog in hogs:
                hog.kill()
        medians = {label: statistics.median(t) for label, t in times.items()}
        best = min(medians.values())
        print(f"\nbeside {busy} busy process(es):")
        for label, median in medians.items():
            print(f"  {label:<24} {median:7.1f} s  ({median / best:.2f}x the best)")
        time.sleep(1)


if __name__ == "__main__":
    main()
