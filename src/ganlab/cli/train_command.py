"""`ganlab train`: its help, then the launch of training (training/launch.py: the checks before Hydra starts,
and the Hydra app)."""

from __future__ import annotations

from pathlib import Path

from ganlab import CONF_DIR
from ganlab.config import register_configs
from ganlab.config.hydra_flags import split_hydra_flags
from ganlab.parts.registry import PARTS
from ganlab.training.launch import launch_training

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
    """`ganlab train REST`: --help, else the checks and the Hydra app (training/launch.py)."""
    if "--help" in rest or "-h" in rest:
        register_configs()
        print(train_help([a for a in rest if a not in ("--help", "-h")]))
        return 0
    return launch_training(rest)
