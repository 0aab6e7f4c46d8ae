"""The `ganlab` command: `ganlab train [hydra overrides]` and, as they arrive, more subcommands."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ganlab import CONF_DIR
from ganlab.config import ConfigError, register_configs
from ganlab.data import DatasetNotFoundError
from ganlab.run_folder import RunFolderError

log = logging.getLogger("ganlab")

USAGE = """usage: ganlab COMMAND [ARGS]

Run, measure and compare GAN experiments composed from Hydra configs.

commands:
  train     train a GAN: ganlab train [key=value ...] [group=option ...] [+exp=NAME] [-m]
            (ganlab train --help lists the config groups and every setting)
  sweep     rebuild a sweep's table (sweep.csv) from its job folders and print it:
            ganlab sweep outputs/sweeps/<sweep folder>

examples:
  ganlab train                                  DCGAN on the bundled 8x8 digits (~2 min on a CPU)
  ganlab train loss=wgan_gp discriminator.norm=layer
  ganlab train data=ring8 generator=mlp discriminator=mlp
  ganlab train -m optim.lr=1e-4,2e-4 seed=1,2,3
  ganlab train -m '+exp=glob(*)'               every study of the seed notes, in parallel
"""

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

# Errors a user fixes by changing the command; shown as one line, no traceback.
USER_ERRORS = (ConfigError, DatasetNotFoundError, RunFolderError)


def _only_hydra_files(folder: Path) -> bool:
    return folder.is_dir() and {p.name for p in folder.iterdir()} <= {".hydra", "train.log"}


def parallel_jobs(hydra_cfg: DictConfig) -> int:
    """How many jobs a sweep's launcher runs at once (joblib's n_jobs: -1 is one per core)."""
    if "joblib" not in str(hydra_cfg.launcher.get("_target_", "")).lower():
        return 1
    n_jobs, cores = int(hydra_cfg.launcher.n_jobs), os.cpu_count() or 1
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)


def share_cores(cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """In a parallel sweep, give each job cores // jobs torch threads and no progress bar."""
    jobs = parallel_jobs(hydra_cfg)
    if jobs > 1:
        if cfg.trainer.threads is None:
            cfg.trainer.threads = max(1, (os.cpu_count() or 1) // jobs)
        cfg.trainer.progress = False  # bars of parallel jobs would garble each other


def record_failure(run_dir: Path, error: BaseException) -> None:
    """Mark a sweep job failed in its own summary.json (train() does it once training started)."""
    from ganlab.run_folder import RunFolder

    run = RunFolder(run_dir)
    try:
        status = json.loads(run.summary_json.read_text()).get("status")
    except (OSError, ValueError):
        status = None
    if status in (None, "running"):
        run.write_summary({"status": "failed", "error": f"{error.__class__.__name__}: {error}"})


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def train_app(cfg: DictConfig) -> float | None:
    from ganlab.train import train

    hydra_cfg = HydraConfig.get()
    run_dir, sweeping = Path(hydra_cfg.runtime.output_dir), hydra_cfg.mode == RunMode.MULTIRUN
    if sweeping:
        share_cores(cfg, hydra_cfg)
    try:
        train(cfg, run_dir)
    except USER_ERRORS as e:
        if sweeping:  # the sweep goes on; its table lists this job as failed
            record_failure(run_dir, e)
            return None
        print(f"ganlab: error: {e}", file=sys.stderr)
        if _only_hydra_files(run_dir):  # nothing was trained: leave no empty run behind
            shutil.rmtree(run_dir)
        raise SystemExit(2) from None
    except Exception as e:
        if not sweeping:
            raise
        log.exception("job failed: %s", run_dir.name)
        record_failure(run_dir, e)
        return None
    print(run_dir)
    return None


def train_help(overrides: list[str]) -> str:
    """Help for `ganlab train`: the groups on disk and the config composed with `overrides`."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    groups = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())
    lines = [f"{g}: {', '.join(sorted(f.stem for f in (CONF_DIR / g).glob('*.yaml')))}" for g in groups]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return TRAIN_HELP.format(groups="\n".join(lines), config=OmegaConf.to_yaml(cfg),
                             with_overrides=f"; shown with {' '.join(overrides)}" if overrides else "")


def sweep_dir_override(args: list[str]) -> list[str]:
    """For `-m`, name the sweep folder once, here, from the command line (a name interpolated from
    the config would differ between jobs that override it)."""
    from datetime import datetime

    from ganlab.sweep import sweep_name

    if not {"-m", "--multirun"} & set(args) or any(a.startswith("hydra.sweep.dir=") for a in args):
        return []
    overrides = [a for a in args if not a.startswith("-") and not a.startswith("hydra")]
    try:
        name = sweep_name(overrides)
    except Exception:  # a malformed override: let Hydra report it
        return []
    return [f"hydra.sweep.dir=outputs/sweeps/{datetime.now():%Y-%m-%d_%H-%M-%S}_{name}"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        register_configs()
        if "--help" in rest or "-h" in rest:
            print(train_help([a for a in rest if a not in ("--help", "-h")]))
            return 0
        sys.argv = ["ganlab train", *rest, *sweep_dir_override(rest)]
        train_app()
        return 0
    if command == "sweep":
        return sweep_command(rest)
    print(f"ganlab: error: unknown command {command!r}; choose one of: train, sweep (ganlab --help)",
          file=sys.stderr)
    return 2


def sweep_command(args: list[str]) -> int:
    from ganlab.sweep import failed_jobs, format_table, job_folders, write_sweep_table

    if len(args) != 1 or args[0].startswith("-"):
        print("usage: ganlab sweep SWEEP_DIR  (rebuild SWEEP_DIR/sweep.csv and print it)", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    sweep_dir = Path(args[0])
    if not sweep_dir.is_dir() or not job_folders(sweep_dir):
        print(f"ganlab: error: {sweep_dir} holds no sweep jobs (folders with .hydra/); give a folder "
              f"under outputs/sweeps/", file=sys.stderr)
        return 2
    rows = write_sweep_table(sweep_dir)
    print(format_table(rows))
    print(f"\n{len(rows)} jobs, {len(failed_jobs(rows))} not completed; table: {sweep_dir / 'sweep.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
