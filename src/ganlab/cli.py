"""The `ganlab` command: `ganlab train [hydra overrides]` and, as they arrive, more subcommands."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
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

examples:
  ganlab train                                  DCGAN on the bundled 8x8 digits (~2 min on a CPU)
  ganlab train loss=wgan_gp discriminator.norm=layer
  ganlab train data=ring8 generator=mlp discriminator=mlp
  ganlab train -m optim.lr=1e-4,2e-4 seed=1,2,3
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


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def train_app(cfg: DictConfig) -> float | None:
    from ganlab.train import train

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        train(cfg, run_dir)
    except USER_ERRORS as e:
        print(f"ganlab: error: {e}", file=sys.stderr)
        if _only_hydra_files(run_dir):  # nothing was trained: leave no empty run behind
            shutil.rmtree(run_dir)
        raise SystemExit(2) from None
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
        sys.argv = ["ganlab train", *rest]
        train_app()
        return 0
    print(f"ganlab: error: unknown command {command!r}; choose one of: train (ganlab --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
