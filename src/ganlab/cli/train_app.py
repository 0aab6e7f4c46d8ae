"""`ganlab train`: its help, the checks before Hydra starts, and the Hydra app behind it (one job, in a
single run or as one job of a sweep)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError

from ganlab import CONF_DIR
from ganlab.config import ConfigError, register_configs
from ganlab.config.advice import advice
from ganlab.cli.hydra_flags import split_hydra_flags, sweep_dir_of, sweep_dir_override
from ganlab.config.trust import UntrustedConfig, check_config_dir
from ganlab.parts.data import DatasetError, DatasetNotFoundError
from ganlab.parts.registry import PARTS
from ganlab.record.catalog import load_run
from ganlab.record.run_folder import HYDRA_NAMES, RunFolder, RunFolderError, claim_new
from ganlab.record.summary import Summary
from ganlab.training.memory import is_out_of_memory
from ganlab.record.sweep_table import interrupted_sweep
from ganlab.training.processes import stop_workers_on_signals
from ganlab.training.sweep import parallel_jobs

log = logging.getLogger("ganlab")

# Errors a user fixes by changing the command; shown as one line, no traceback.
USER_ERRORS = (ConfigError, DatasetError, DatasetNotFoundError, RunFolderError, InterpolationResolutionError)


def one_line(error: Exception) -> str:
    """The error's message; an unresolvable interpolation's with the key it is in."""
    if isinstance(error, InterpolationResolutionError):
        return (f"{error.full_key}: {str(error).splitlines()[0]}; fix the interpolation (${{...}}) in your "
                f"override or config file")
    return str(error)


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def train_app(cfg: DictConfig) -> float | None:
    from ganlab.training.job import train

    hydra_cfg = HydraConfig.get()
    run_dir, sweeping = Path(hydra_cfg.runtime.output_dir), hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if sweeping:  # Hydra made the job's folder and wrote its .hydra/ and train.log into it
            claim_new(run_dir, allow=HYDRA_NAMES)
        summary = train(cfg, run_dir, jobs=parallel_jobs(hydra_cfg) if sweeping else 1)
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


TRAIN_HELP = """ganlab train: compose a GAN from config groups, train it with one loop, and write a run folder
(metrics.csv, samples/, history.png, checkpoints/, summary.json, train.log).

usage: ganlab train [group=option ...] [key=value ...] [+exp=NAME] [-m] [--cfg job] [--info]

== Config groups (pick with group=option) ==
{groups}

== Config (change with key=value{with_overrides}) ==
{config}
Examples:
  ganlab train                                   # DCGAN on the bundled 8x8 digits
  ganlab train loss=wgan_gp discriminator.norm=layer
  ganlab train data=ring8 generator=mlp discriminator=mlp loss=hinge
  ganlab train optim.lr=2e-4 optim.d_lr_mult=0.5 optim.g_lr_mult=2
  ganlab train -m optim.lr=1e-4,2e-4 discriminator.dropout=0.3,0.5
  ganlab train --cfg job                         # print the composed config, train nothing
Runs go to outputs/runs/<date>_<time>_<name>/ (move one with hydra.run.dir=PATH).
Hydra's own options: ganlab train --hydra-help
"""

def config_dirs(flags: dict[str, str | None]) -> list[Path]:
    """ganlab's own config folder, then a user's from --config-dir / -cd (its groups add to ganlab's)."""
    extra = flags.get("--config-dir") or flags.get("-cd")
    return [CONF_DIR] + ([Path(extra).expanduser().resolve()] if extra else [])


def train_help(args: list[str]) -> str:
    """Help for `ganlab train`: the groups on disk and the config composed with the overrides."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    flags, overrides = split_hydra_flags(args)
    dirs = config_dirs(flags)
    options: dict[str, set[str]] = {}  # group (hydra/launcher for a nested one) -> its options
    for d in (d for d in dirs if d.is_dir()):
        for f in d.glob("*/**/*.yaml"):
            options.setdefault(f.parent.relative_to(d).as_posix(), set()).add(f.stem)
    for registry in PARTS:  # installed plug-ins' options too
        options.setdefault(registry.part, set()).update(registry.names())
    lines = [f"{g}: {', '.join(sorted(o))}" for g, o in sorted(options.items())]
    searchpath = [f"hydra.searchpath=[file://{d}]" for d in dirs[1:]]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=searchpath + overrides)
    return TRAIN_HELP.format(groups="\n".join(lines), config=OmegaConf.to_yaml(cfg),
                             with_overrides=f"; shown with {' '.join(overrides)}" if overrides else "")


def train_command(rest: list[str]) -> int:
    """`ganlab train REST`: --help, the checks on config files and overrides, then the Hydra app (a single
    run, or a sweep whose Ctrl-C or SIGTERM stops its workers with one line)."""
    register_configs()
    if "--help" in rest or "-h" in rest:
        print(train_help([a for a in rest if a not in ("--help", "-h")]))
        return 0
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
        train_app()
        return 0
    sweep_dir = sweep_dir_of(sys.argv)
    # joblib's semaphores of workers stopped mid-job: the resource tracker's warning would follow our one line
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                          "ignore::UserWarning:multiprocessing.resource_tracker"]))
    try:
        with stop_workers_on_signals(sweep_dir):
            train_app()
    except KeyboardInterrupt:  # the jobs checkpointed and stopped: one line, not joblib's traceback
        print(f"ganlab: {interrupted_sweep(sweep_dir)}", file=sys.stderr)
        return 130
    return 0
