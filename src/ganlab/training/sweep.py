"""Sweeps: cores shared between parallel jobs, a new sweep never written into an old one's folder, and
an interrupted sweep completed in place (its stopped jobs resumed, the jobs it never started trained)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from ganlab.record.catalog import is_sweep, load_run
from ganlab.record.run_folder import SWEEP_LOCK, RunFolderError, claim_existing
from ganlab.record.sweep_plan import job_folder_name, job_folders, missing_jobs, planned_config_dir, planned_overrides
from ganlab.training.processes import run_workers


def parallel_jobs(hydra_cfg: DictConfig) -> int:
    """How many jobs a sweep's launcher runs at once (joblib's n_jobs: -1 is one per core)."""
    if "joblib" not in str(hydra_cfg.launcher.get("_target_", "")).lower():
        return 1
    n_jobs, cores = int(hydra_cfg.launcher.n_jobs), os.cpu_count() or 1
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)


def stacks_here(hydra_cfg: DictConfig) -> bool:
    """Whether a sweep's jobs can be queued to train as stacks at its end: its launcher runs them on this machine
    (basic, joblib; a cluster's, submitit, trains each job alone where it lands) and its sweeper plans every job
    at once (a sweeper that learns from each job's score, Optuna's, needs the job trained)."""
    launcher = str(hydra_cfg.launcher.get("_target_", "")).lower()
    sweeper = str(hydra_cfg.sweeper.get("_target_", "")).lower()
    return ("joblib" in launcher or "basic" in launcher) and "basicsweeper" in sweeper


def threads_for(cfg: DictConfig, jobs: int) -> int | None:
    """Torch threads of one job when `jobs` share the machine: trainer.threads, else cores // jobs
    (None: torch's default, for a job alone)."""
    if cfg.trainer.threads or jobs <= 1:
        return cfg.trainer.threads
    return max(1, (os.cpu_count() or 1) // jobs)


def refuse_existing_sweep(sweep_dir: Path) -> None:
    """A new sweep never writes into a folder that holds one (its jobs' folders would be overwritten)."""
    if sweep_dir.is_dir() and (is_sweep(sweep_dir) or job_folders(sweep_dir)):
        raise RunFolderError(f"{sweep_dir} already holds a sweep; nothing was changed. Choose a new folder with "
                             f"hydra.sweep.dir=PATH")


def forget_unstarted_sweep(sweep_dir: Path) -> bool:
    """Remove a sweep folder that a sweep claimed and was stopped in before it wrote its plan (it holds
    its lock file alone, and no process holds that): True when it was removed, so the sweep starts anew."""
    if [p.name for p in Path(sweep_dir).iterdir()] != [SWEEP_LOCK]:
        return False
    claim_existing(sweep_dir, SWEEP_LOCK).release()  # refused while a live sweep holds it
    (Path(sweep_dir) / SWEEP_LOCK).unlink()
    Path(sweep_dir).rmdir()
    return True


def resume_sweep(sweep_dir: Path, say=print, log: Optional[Path] = None, deadline: Optional[float] = None) -> None:
    """Complete an interrupted sweep in place, as many jobs at a time as its launcher ran, each on the threads
    it had there (the numbers an uninterrupted sweep makes): resume its stopped jobs (and those whose folder
    Hydra made but that never trained), then train the jobs it never started into the same folder. Refused
    while another process (the sweep itself, or another completing it) holds the folder; a `deadline` stops
    it as it stops run_worker."""
    from ganlab.training.stacked_runs import WAITING, run_stacks, stack_groups

    claim_existing(sweep_dir, SWEEP_LOCK)
    jobs = [load_run(p) for p in job_folders(sweep_dir)]
    # "not started": Hydra made its folder (or queued it for a stack), and the sweep stopped before it trained
    waiting = [job.path for job in jobs if job.status in WAITING]
    stacks = stack_groups(waiting)  # those of a sweep with trainer.stack > 1
    for group in stacks:
        say(f"resuming {', '.join(p.name for p in group)}" + (" as a stack" if len(group) > 1 else ""))
    at_once, commands = planned_parallel_jobs(sweep_dir), []
    run_stacks(stacks, at_once, log=log, deadline=deadline)
    for path in [p for p in waiting if not any(p in group for group in stacks)]:
        say(f"resuming {path.name}")
        commands.append(["resume", "--jobs", str(at_once), str(path)])  # its threads: what its checkpoint says
    overrides, config_dir = planned_overrides(sweep_dir), planned_config_dir(sweep_dir)
    for job in missing_jobs(overrides, jobs) if overrides else []:
        folder = Path(sweep_dir).resolve() / job_folder_name(job)
        say(f"starting {folder.name}")
        commands.append(["train", "--jobs", str(at_once), *(["--config-dir", config_dir] if config_dir else []), *job,
                         f"hydra.run.dir='{folder}'"])  # quoted: the name holds '=' and ','
    run_workers(commands, at_once, log=log, deadline=deadline)


def planned_parallel_jobs(sweep_dir: Path) -> int:
    """How many jobs at once a sweep's launcher ran (its multirun.yaml); 1 where it does not say."""
    try:
        return parallel_jobs(OmegaConf.load(Path(sweep_dir) / "multirun.yaml").hydra)
    except Exception:  # an unreadable or foreign file, or no launcher named: one job at a time
        return 1
