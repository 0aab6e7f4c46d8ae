"""A sweep's jobs trained as stacks (training/stack.py): which job folders share one (their configs differ only
in seed, learning rates, label targets and penalty weights, and they stand at the same step; at most trainer.stack of them, or as many as
stack_rule.py finds pays), the worker's `stack` command that trains them, and the Hydra callback that trains
a sweep's queued jobs once its launcher has made their folders.

With trainer.stack=K > 1 (or auto) a sweep's launcher only makes and checks each job's folder (the job is
queued, "not started"); at the sweep's end TrainStacks groups the queued jobs and trains each group in a worker process
(`python -m ganlab.training.launch stack [--jobs N] DIR...`), as many at once as the launcher would run jobs.
Each member writes its own complete run folder; its summary.json names the stack's members.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ganlab.record.catalog import load_run
from ganlab.record.checkpoints import Checkpoint, CheckpointError
from ganlab.record.run_folder import SUMMARY_JSON
from ganlab.record.summary import Summary
from ganlab.record.sweep_plan import job_folders
from ganlab.training.job import Job, stop_on_signals
from ganlab.training.processes import run_workers
from ganlab.training.resume import log_to, saved_run
from ganlab.training.stack import StackedTrainer
from ganlab.training.stack_rule import cannot_stack, measured_stack
from ganlab.training.sweep import parallel_jobs

logger = logging.getLogger("ganlab")

WAITING = ("stopped", "interrupted", "not started")  # a sweep's jobs that a stack (re)starts
# the settings, by group, in which a stack's members may differ (training/stack.py takes each member's own)
SHARED_NUMBERS = {"optim": ("lr", "d_lr_mult", "g_lr_mult"),
                  "loss": ("real_target", "fake_target", "gp_weight", "r1_gamma", "r2_gamma"),
                  "generator": ("dropout",), "discriminator": ("dropout",)}  # dropout: its rate (0 is no layer)


STACK_PLAN = "GANLAB_STACK_PLAN"  # a sweep's stack size for each group of its jobs (plan_stacks), for its jobs


def group_key(overrides: list[str]) -> str:
    """The group of a sweep's job, from its overrides: all but its seed and SHARED_NUMBERS (of a dropout rate,
    whether it drops: 0 is no layer)."""
    shared = {f"{group}.{key}" for group, keys in SHARED_NUMBERS.items() for key in keys}
    kept = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key.endswith(".dropout") and key in shared:
            kept.append(f"{key} drops: {_rate(value) != 0}")
        elif key != "seed" and key not in shared:
            kept.append(override)
    return json.dumps(sorted(kept))


def _rate(value: str) -> float:
    """A dropout rate as an override writes it ("0", "0.00", "1e-6"); one that is not a number counts as dropping."""
    try:
        return float(value)
    except ValueError:
        return 1.0


def plan_stacks(overrides: list[str], threads: int, say=print) -> tuple[dict[str, int], int]:
    """trainer.stack=auto at a sweep's start: for each group of its planned jobs (group_key), the stack size
    measure_stack finds on `threads` threads (saying so; 1 for a job alone; a group it cannot compose is left
    to the sweep's end: absent), and how many jobs will wait for a stack. Called inside the Hydra app (its
    config search path, a --config-dir's included)."""
    from hydra import compose
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups: dict[str, list[list[str]]] = {}
    # each job's overrides written as the basic sweeper writes them (its jobs' keys are compared with these)
    for job in BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)[0]:
        groups.setdefault(group_key(job), []).append(job)
    plan = {}
    for key, jobs in groups.items():
        if len(jobs) < 2:
            plan[key] = 1
            continue
        try:
            cfg = compose("train", overrides=jobs[0])
        except Exception:  # measured at the sweep's end, from the job's saved config
            continue
        plan[key], why = measured_stack(cfg, len(jobs), threads)
        say(f"ganlab: trainer.stack=auto for {len(jobs)} {cfg.name} jobs: stacks of {plan[key]} ({why})")
    return plan, sum(len(jobs) for key, jobs in groups.items() if plan.get(key, 2) > 1)


def waits_for_stack(cfg: DictConfig, overrides: list[str]) -> bool:
    """Whether a sweep's job (its config and overrides) is queued to train in a stack at the sweep's end:
    trainer.stack a number > 1, or auto where the sweep's plan found a stack pays for its group (or made no
    plan: the sweep's end decides)."""
    if stack_size(cfg) is not None:
        return stack_size(cfg) > 1
    plan = json.loads(os.environ.get(STACK_PLAN, "null"))
    return plan is None or plan.get(group_key(overrides), 2) > 1


def wants_stack(cfg: DictConfig) -> bool:
    """trainer.stack asks for stacks (a number > 1, or auto; a config saved with it as a number counts too)."""
    return str(cfg.trainer.stack) != "1"


def stack_size(cfg: DictConfig) -> int | None:
    """trainer.stack as a number (None: auto)."""
    return None if cfg.trainer.stack == "auto" else int(cfg.trainer.stack)


def stack_groups(run_dirs: list[Path], threads: Optional[int] = None, say=print,
                 plan: Optional[dict[str, int]] = None) -> list[list[Path]]:
    """The run folders whose configs ask for stacks (trainer.stack not 1), grouped: same config but for the
    seed and SHARED_NUMBERS, same checkpoint step; at most trainer.stack a group (auto: as the sweep's `plan`
    says for their overrides' group, else as measured_stack finds on `threads` threads, saying so), in the
    order given. Folders with no config to train from, and runs begun alone, are left out."""
    alike: dict[str, tuple[DictConfig, list[Path]]] = {}
    for run_dir in run_dirs:
        try:
            cfg, state = saved_run(run_dir, [])
        except CheckpointError:  # the resume of it says what is missing
            continue
        if not wants_stack(cfg) or state is not None and "stack" not in load_run(run_dir).summary:
            continue  # a run begun alone resumes alone, bit for bit
        config = OmegaConf.to_container(cfg, resolve=True)
        config.pop("seed")
        for group, keys in SHARED_NUMBERS.items():
            for key in keys:
                value = config[group].pop(key, None)
                if key == "dropout":
                    config[group]["drops"] = bool(value)  # a layer or none: members share the architecture
        key = json.dumps([config, state.step if state else 0], sort_keys=True, default=str)
        alike.setdefault(key, (cfg, []))[1].append(run_dir)
    groups = []
    for cfg, dirs in alike.values():
        k = stack_size(cfg) or (plan or {}).get(group_key(load_run(dirs[0]).overrides))
        if k is None:
            k, why = measured_stack(cfg, len(dirs), threads)
            say(f"ganlab: trainer.stack=auto for {len(dirs)} {cfg.name} jobs: stacks of {k} ({why})")
        elif k > 1 and len(dirs) > 1 and (why := cannot_stack(cfg)):
            k = 1
            say(f"ganlab: {len(dirs)} {cfg.name} jobs train one a process, not as stacks: {why}")
        groups += [dirs[i:i + k] for i in range(0, len(dirs), k)]
    return groups


def run_stacks(groups: list[list[Path]], at_once: int = 1, log: Optional[Path] = None,
               deadline: Optional[float] = None) -> None:
    """Each group as a stack in a worker process of its own, and the groups of one run in `at_once` workers
    that train them one after another (a process each would pay torch's import a run), `at_once` workers at
    a time (sharing the cores); the workers' output appended to `log` (else shown), stopped at `deadline` as
    run_workers stops them."""
    at_once = max(1, min(at_once, len(groups)))
    alone = [group[0] for group in groups if len(group) == 1]
    work = [group for group in groups if len(group) > 1] + [["--each", *alone[i::at_once]] for i in range(at_once)
                                                            if alone[i::at_once]]
    run_workers([["stack", "--jobs", str(at_once), *map(str, args)] for args in work], at_once, log=log,
                deadline=deadline)


class TrainStacks(Callback):
    """At a sweep's end (before its table): its queued jobs trained as stacks."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        if not sweep_dir.is_dir():
            return
        queued = [p for p in job_folders(sweep_dir) if load_run(p).status == "not started"]
        plan = json.loads(os.environ.pop(STACK_PLAN, "null"))
        groups = stack_groups(queued, threads=max(1, (os.cpu_count() or 1) // parallel_jobs(config.hydra)), plan=plan)
        if groups:
            at_once, stacks = min(len(groups), parallel_jobs(config.hydra)), sum(len(g) > 1 for g in groups)
            alone = sum(len(g) == 1 for g in groups)
            how = f" as {stacks} stack{'s' * (stacks != 1)}" + (f" and {alone} alone" if alone else "") if stacks else ""
            print(f"ganlab: {len(queued)} jobs{how}, {at_once} at a time; each job's train.log says its G steps and "
                  f"time left", flush=True)
            if at_once > 1:
                run_stacks(groups, at_once)
            else:  # one at a time: in this process, as the basic launcher trains its jobs
                for group in groups:
                    train_stack(group)


def member(run_dir: Path, cfg: DictConfig, state: Optional[Checkpoint], jobs: int) -> Job:
    """A stack's member, ready to train: new (a queued job's folder holds Hydra's files alone), resumed from
    its last.pt (`state`), or started over (stopped before its first checkpoint)."""
    new = state is None and not (run_dir / SUMMARY_JSON).exists()
    return Job(cfg, run_dir, resume=state, restart=state is None and not new, jobs=jobs, queued=new)


def train_stack(run_dirs: list[Path], jobs: int = 1, overrides: tuple[str, ...] = ()) -> int:
    """Train these run folders as one stack, each with the `overrides` a resume takes (trainer.epochs=...); or,
    saying why, one after another as solo runs when they cannot stack. A run that cannot start is marked
    failed and the others train. An exit code: 0 when every member completed."""
    run_dirs = [Path(d) for d in run_dirs]
    with log_to(*run_dirs):
        saved = {d: s for d in run_dirs if (s := or_failed(d, lambda: saved_run(d, list(overrides))))}
        reason = why_not_one_stack(list(saved.values()))
        if reason:  # each built and trained in turn, as its solo run (its global random stream included)
            if len(saved) > 1:
                logger.warning("%d runs train one after another, not as a stack: %s", len(saved), reason)
            done = [or_failed(d, lambda: member(d, *s, jobs).train()["status"]) for d, s in saved.items()]
        else:
            members = [m for d, s in saved.items() if (m := or_failed(d, lambda: member(d, *s, jobs)))]
            done = [train_members(members, jobs) == 0 and "completed"] * len(members) if members else []
        return 0 if len(done) == len(run_dirs) and all(status == "completed" for status in done) else 1


def or_failed(run_dir: Path, work: Callable[[], Any]) -> Any:
    """work()'s result; or None, the run marked failed with the error (it cannot start or train), so that
    the others still train, as a sweep's launcher goes on past a failed job."""
    try:
        return work()
    except Exception as e:
        logger.error("%s: %s: %s", run_dir.name, e.__class__.__name__, e)
        Summary.mark_failed(run_dir, e)
        return None


def why_not_one_stack(saved: list[tuple[DictConfig, Optional[Checkpoint]]]) -> Optional[str]:
    """Why runs (their configs and checkpoints) cannot train as one stack; None: they can."""
    if len(saved) < 2:
        return "a stack of one"
    if len({state.step if state else 0 for _, state in saved}) > 1:
        return "they do not stand at the same step"
    return cannot_stack(saved[0][0])


def train_members(members: list[Job], jobs: int) -> int:
    names = [job.run.path.name for job in members]
    for k, job in enumerate(members):
        job.summary.in_stack(names, k)
    logger.info("a stack of %d: %s", len(members), ", ".join(names))
    stack = StackedTrainer([job.trainer for job in members],
                           progress_bar=jobs == 1 and bool(members[0].cfg.trainer.progress))
    try:
        with stop_on_signals(stack, worker=jobs > 1):
            stack.fit()
    except (KeyboardInterrupt, Exception) as e:
        for k, job in enumerate(members):
            job.diverged(stack.diverged[k]) if k in stack.diverged else job.stopped(e)
        raise
    else:
        for k, job in enumerate(members):
            job.diverged(stack.diverged[k]) if k in stack.diverged else job.completed()
    finally:
        for job in members:
            job.close()
    return 0 if all(job.summary["status"] == "completed" for job in members) else 1

