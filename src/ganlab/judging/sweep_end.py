"""The end of a sweep (a Hydra callback named in conf/train.yaml): its table, compare's verdict on each swept
key, and a non-zero exit when a job failed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganlab.record.sweep_table import failed_jobs, format_table, write_sweep_table


class SweepSummary(Callback):
    """At the end of a sweep: sweep.csv and a printed table; a non-zero exit if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        if not sweep_dir.is_dir():
            return
        rows = write_sweep_table(sweep_dir)
        print(f"\n{format_table(rows)}\n\nsweep table: {sweep_dir / 'sweep.csv'}")
        print_verdict(sweep_dir)
        failed = failed_jobs(rows)
        if failed:
            print(f"ganlab: {len(failed)} of {len(rows)} jobs failed:", file=sys.stderr)
            for row in failed:
                print(f"  {row['job']}: {row['status']}: {row['error']}", file=sys.stderr)
            raise SystemExit(1)
        print(sweep_dir)


def print_verdict(sweep_dir: Path) -> None:
    """compare's verdict on each swept key, when the jobs have scores to compare."""
    from ganlab.judging.compare import compare
    from ganlab.judging.verdict import verdicts
    from ganlab.record.catalog import find_runs

    try:
        comparison = compare(find_runs(sweep_dir))
    except ValueError:  # no scores (metrics off, every job failed): the table says why
        return
    if comparison.factors:
        print("\n".join(verdicts(comparison)))
        print(f"(ganlab compare {sweep_dir} for the table, the course over training and the figures)")
