"""The `ganlab` command: dispatches to its subcommands (`train`, `sweep`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ganlab import CONF_DIR
from ganlab.config import register_configs

USAGE = """usage: ganlab COMMAND [ARGS]

Run, measure and compare GAN experiments composed from Hydra configs.

commands:
  train     train a GAN: ganlab train [key=value ...] [group=option ...] [+exp=NAME] [-m]
            (ganlab train --help lists the config groups and every setting)
  sweep     rebuild a sweep's table (sweep.csv) from its job folders and print it:
            ganlab sweep outputs/sweeps/<sweep folder>

examples:
  ganlab train                                  DCGAN on the bundled 8x8 digits (~20 s on a CPU)
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
        from ganlab.app import train_app
        from ganlab.sweep import sweep_dir_override

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
