"""Hydra callbacks: checks that must happen before Hydra writes anything into a run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganlab.run_folder import RunFolder, RunFolderError
from ganlab.sweep import failed_jobs, format_table, write_sweep_table


class RefuseExistingRun(Callback):
    """A single run never writes into a folder that already holds a run (Hydra would overwrite
    its .hydra/ before the job starts, so the check runs here, first)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            RunFolder(Path(config.hydra.run.dir)).refuse_existing_run()
        except RunFolderError as e:
            print(f"ganlab: error: {e}", file=sys.stderr)
            raise SystemExit(2) from None


class SweepSummary(Callback):
    """At the end of a sweep: sweep.csv and a printed table; a non-zero exit if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        if not sweep_dir.is_dir():
            return
        rows = write_sweep_table(sweep_dir)
        print(f"\n{format_table(rows)}\n\nsweep table: {sweep_dir / 'sweep.csv'}")
        failed = failed_jobs(rows)
        if failed:
            print(f"ganlab: {len(failed)} of {len(rows)} jobs failed:", file=sys.stderr)
            for row in failed:
                print(f"  {row['job']}: {row['status']}: {row['error']}", file=sys.stderr)
            raise SystemExit(1)
        print(sweep_dir)
