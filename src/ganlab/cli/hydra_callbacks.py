"""Hydra callbacks: checks that must happen before Hydra writes anything into a run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganlab.config import ConfigError
from ganlab.record.run_folder import RunFolderError, claim_new, claim_sweep
from ganlab.record.sweep_table import failed_jobs, format_table, write_sweep_table
from ganlab.training.sweep import refuse_existing_sweep
from ganlab.training.trackers import experiment_id, mlflow_client


def _refuse(error: Exception) -> None:
    print(f"ganlab: error: {error}", file=sys.stderr)
    raise SystemExit(2) from None


def check_name(name: str) -> None:
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise RunFolderError(f"name={name!r} names the run folder; use letters, digits, '-', '_' or '.' "
                             f"(no '/'), e.g. name=my_run")


class ClaimRunFolder(Callback):
    """A single run claims its folder before Hydra writes .hydra/ there, refusing one that holds a
    run or ganlab's file names, or that another process claimed; a sweep refuses a sweep folder
    that already holds a sweep."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_name(str(config.name))
            claim_new(Path(config.hydra.run.dir))
        except RunFolderError as e:
            _refuse(e)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_name(str(config.name))
            refuse_existing_sweep(Path(config.hydra.sweep.dir))
            claim_sweep(Path(config.hydra.sweep.dir))
            say_sweep_plan(config)
            if config.logger.name == "mlflow":  # one experiment per sweep, made once before its jobs start
                name = config.logger.experiment or Path(config.hydra.sweep.dir).name
                experiment_id(mlflow_client(config.logger), name)
        except (RunFolderError, ConfigError) as e:
            _refuse(e)


def say_sweep_plan(config: DictConfig) -> None:
    """Before a grid sweep's jobs: how many, how many at once, on which processor; each job's train.log
    then says its own G steps, evaluations and time left."""
    from ganlab.training.cost import processor
    from ganlab.record.sweep_plan import settings
    from ganlab.training.sweep import parallel_jobs

    try:
        jobs = len(settings([str(o) for o in config.hydra.overrides.task]))
    except Exception:  # a sweeper with its own plan (Optuna), or a glob: Hydra says how many it launches
        return
    at_once = min(jobs, parallel_jobs(config.hydra))
    print(f"ganlab: {jobs} jobs, {at_once} at a time, on {processor()}; each job's train.log says its G steps, "
          f"evaluations and time left after its first steps", flush=True)


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
