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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        register_configs()
        sys.argv = ["ganlab train", *rest]
        train_app()
        return 0
    print(f"ganlab: error: unknown command {command!r}; choose one of: train (ganlab --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
