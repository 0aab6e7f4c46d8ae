"""Starting training without the command line: the checks before Hydra starts and the Hydra app behind
`ganlab train` (one run, or the jobs of a sweep), its callback that claims folders, and a worker entry point
that sweeps and studies run in processes of their own:

    python -m ganlab.training.launch train [overrides] [-m]     # as `ganlab train`, less its --help
    python -m ganlab.training.launch resume RUN_DIR [overrides]  # as `ganlab resume`
    python -m ganlab.training.launch stack [--jobs N] [--each] RUN_DIR... [-- OVERRIDES]  # runs as one stack
    # (stacked_runs.py), or with --each one after another, each alone
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError

from ganlab import CONF_DIR
from ganlab.config import ConfigError, register_configs, validate
from ganlab.config.advice import advice
from ganlab.config.hydra_flags import split_hydra_flags, sweep_dir_of, sweep_dir_override
from ganlab.config.trust import UntrustedConfig, check_config_dir
from ganlab.parts.data import DatasetError, DatasetNotFoundError
from ganlab.record.catalog import load_run
from ganlab.record.run_folder import HYDRA_NAMES, RunFolder, RunFolderError, claim_new, claim_sweep
from ganlab.record.summary import Summary
from ganlab.record.sweep_table import interrupted_sweep
from ganlab.config.memory import is_out_of_memory
from ganlab.training.processes import stop_workers_on_signals
from ganlab.training.sweep import parallel_jobs, refuse_existing_sweep, stacks_here
from ganlab.training.trackers import experiment_id, mlflow_client

log = logging.getLogger("ganlab")

# Errors a user fixes by changing the command; shown as one line, no traceback.
USER_ERRORS = (ConfigError, DatasetError, DatasetNotFoundError, RunFolderError, InterpolationResolutionError)


def one_line(error: Exception) -> str:
    """The error's message; an unresolvable interpolation's with the key it is in."""
    if isinstance(error, InterpolationResolutionError):
        return (f"{error.full_key}: {str(error).splitlines()[0]}; fix the interpolation (${{...}}) in your "
                f"override or config file")
    return str(error)


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
    from ganlab.record.sweep_plan import swept_settings
    from ganlab.training.cost import processor
    from ganlab.training.stacked_runs import STACK_PLAN, plan_stacks, wants_stack

    os.environ.pop(STACK_PLAN, None)
    overrides = [str(o) for o in config.hydra.overrides.task]
    try:
        jobs = len(swept_settings(overrides))
    except Exception:  # a sweeper with its own plan (Optuna), or a glob: Hydra says how many it launches
        return
    at_once = min(jobs, parallel_jobs(config.hydra))
    if wants_stack(config) and stacks_here(config.hydra):
        if config.trainer.stack != "auto":
            print(f"ganlab: {jobs} jobs on {processor()}, trained as stacks of {config.trainer.stack} once their "
                  f"folders are made", flush=True)
            return
        plan, waiting = plan_stacks(overrides, threads=max(1, (os.cpu_count() or 1) // at_once))
        os.environ[STACK_PLAN] = json.dumps(plan)  # the jobs' own processes read it: wait for a stack, or train now
        if waiting:
            print(f"ganlab: {jobs} jobs on {processor()}; {waiting} of them train as stacks once their folders are "
                  f"made (trainer.stack=1: each job its own process)", flush=True)
            return
    print(f"ganlab: {jobs} jobs, {at_once} at a time, on {processor()}; each job's train.log says its G steps, "
          f"evaluations and time left after its first steps", flush=True)


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def hydra_task(cfg: DictConfig) -> float | None:
    """Hydra's task: one job, a single run or one of a sweep; its best score is what a sweeper minimises."""
    from ganlab.training.job import run_job
    from ganlab.training.stacked_runs import waits_for_stack

    hydra_cfg = HydraConfig.get()
    run_dir, sweeping = Path(hydra_cfg.runtime.output_dir), hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if sweeping:  # Hydra made the job's folder and wrote its .hydra/ and train.log into it
            claim = claim_new(run_dir, allow=HYDRA_NAMES)
            if waits_for_stack(cfg, list(hydra_cfg.overrides.task)) and stacks_here(hydra_cfg):
                # queued: trained in a stack at the sweep's end (stacked_runs.TrainStacks)
                validate(cfg)
                claim.release()
                return None
        summary = run_job(cfg, run_dir, jobs=parallel_jobs(hydra_cfg) if sweeping else _sharing)
    except KeyboardInterrupt:
        if sweeping:
            raise
        print(f"ganlab: interrupted; checkpoint saved. Continue with: ganlab resume {run_dir}", file=sys.stderr)
        raise SystemExit(130) from None
    except USER_ERRORS as e:
        if sweeping:  # the sweep goes on; its table lists this job as failed
            Summary.mark_failed(run_dir, e)
            return None
        print(f"ganlab: error: {one_line(e)}", file=sys.stderr)
        RunFolder(run_dir).abandon()  # nothing was trained: remove what this command wrote, and only that
        raise SystemExit(2) from None
    except Exception as e:
        if not sweeping and is_out_of_memory(e):
            print(f"ganlab: error: out of memory ({str(e).splitlines()[0][:200]}); lower trainer.batch_size, the "
                  f"network widths or the sample counts", file=sys.stderr)
            RunFolder(run_dir).abandon()
            raise SystemExit(2) from None
        if not sweeping:
            raise
        log.exception("job failed: %s", run_dir.name)
        Summary.mark_failed(run_dir, e)
        return None
    if summary["status"] != "completed" and not sweeping:
        print(f"ganlab: run {summary['status']}: {summary.get('error', '')}", file=sys.stderr)
        print(run_dir)
        raise SystemExit(1)
    if not sweeping:
        print(load_run(run_dir).headline())
    print(run_dir)
    best = summary.get("quality", {}).get("best") or {}
    return best.get("score")  # what a sweeper (Optuna) minimises


def launch_training(rest: list[str]) -> int:
    """`ganlab train REST` less its --help: the checks on config files and overrides, then the Hydra app (a
    single run, or a sweep whose Ctrl-C or SIGTERM stops its workers with one line); its exit code."""
    register_configs()
    flags, overrides = split_hydra_flags(rest)
    config_dir = flags.get("--config-dir") or flags.get("-cd")
    try:
        check_config_dir(Path(config_dir) if config_dir else None, overrides)
    except UntrustedConfig as e:
        print(f"ganlab: error: {e}", file=sys.stderr)
        return 2
    fix = advice(overrides, check_keys=not config_dir)  # a user's own groups: Hydra's to judge
    if fix:
        print(f"ganlab: error: {fix}", file=sys.stderr)
        return 2

    sys.argv = ["ganlab train", *rest, *sweep_dir_override(rest)]
    if not {"-m", "--multirun"} & set(rest):
        hydra_task()
        return 0
    sweep_dir = sweep_dir_of(sys.argv)
    # joblib's semaphores of workers stopped mid-job: the resource tracker's warning would follow our one line
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                          "ignore::UserWarning:multiprocessing.resource_tracker"]))
    try:
        with stop_workers_on_signals(sweep_dir):
            hydra_task()
    except KeyboardInterrupt:  # the jobs checkpointed and stopped: one line, not joblib's traceback
        print(f"ganlab: {interrupted_sweep(sweep_dir)}", file=sys.stderr)
        return 130
    return 0


_sharing = 1  # how many jobs share the machine with a worker's single run (`train --jobs N`)


def worker(argv: list[str]) -> int:
    """A sweep's or study's job in a process of its own: `train ARGS` as `ganlab train`, `resume RUN_DIR
    [OVERRIDES]` as `ganlab resume`, `stack [--each] RUN_DIR... [-- OVERRIDES]` queued or stopped runs as one
    stack (--each: one after another, each alone), each resumed with OVERRIDES as `ganlab resume` takes them;
    an exit code as theirs. `COMMAND --jobs N ...`: it shares the machine with N - 1 other jobs (a sweep's:
    cores // N threads unless its checkpoint says, no progress bar)."""
    global _sharing
    command, rest = argv[0], argv[1:]
    jobs, rest = (int(rest[1]), rest[2:]) if rest[:1] == ["--jobs"] else (1, rest)
    if command == "train":
        _sharing = jobs
        return launch_training(rest)
    from ganlab.training.resume import resume_run
    from ganlab.training.stacked_runs import train_stack

    try:
        if command == "stack":  # stack [--jobs N] [--each] RUN_DIR... [-- OVERRIDES]
            each, rest = (True, rest[1:]) if rest[:1] == ["--each"] else (False, rest)
            dirs, overrides = (rest[:rest.index("--")], rest[rest.index("--") + 1:]) if "--" in rest else (rest, [])
            stacks = [[Path(d)] for d in dirs] if each else [[Path(d) for d in dirs]]
            return max(train_stack(group, jobs, overrides) for group in stacks)
        return 0 if resume_run(Path(rest[0]), rest[1:], jobs)["status"] == "completed" else 1
    except KeyboardInterrupt:  # checkpointed and marked interrupted
        return 130


if __name__ == "__main__":
    raise SystemExit(worker(sys.argv[1:]))
