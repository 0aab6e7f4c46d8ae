"""Hydra's command line as ganlab reads it before Hydra does: its flags apart from the overrides, and a
sweep folder named once from the command line (every job then agrees on it)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Optional


def sweep_name(overrides: list[str]) -> str:
    """A sweep folder's name from its command line: the fixed choices that name it, then the swept
    keys, e.g. `-m data=ring8 loss=bce,wgan_gp seed=1,2` -> ring8_loss-seed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [str(o.value()) for o in parsed if not o.is_sweep_override() and o.key_or_group in ("name", "data", "exp")]
    swept = [o.key_or_group.split(".")[-1] for o in parsed if o.is_sweep_override()]
    name = "_".join(fixed + (["-".join(swept)] if swept else []))
    return re.sub(r"[^\w.=-]+", "-", name) or "sweep"


# Hydra's command-line flags that take a value (the others stand alone).
HYDRA_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c",
                     "--package", "-p", "--experimental-rerun", "--shell-completion", "-sc"}


def split_hydra_flags(args: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """Hydra's flags (with their values) apart from the overrides."""
    flags: dict[str, str | None] = {}
    overrides, it = [], iter(args)
    for arg in it:
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            flags[name] = value if eq else (next(it, None) if name in HYDRA_VALUE_FLAGS else None)
        else:
            overrides.append(arg)
    return flags, overrides


def sweep_dir_override(args: list[str]) -> list[str]:
    """For `-m`, name the sweep folder once, here, from the command line (a name interpolated from
    the config would differ between jobs that override it)."""
    if not {"-m", "--multirun"} & set(args) or any(a.startswith("hydra.sweep.dir=") for a in args):
        return []
    overrides = [a for a in split_hydra_flags(args)[1] if not a.startswith("hydra")]
    try:
        name = sweep_name(overrides)
    except Exception:  # a malformed override: let Hydra report it
        return []
    return [f"hydra.sweep.dir=outputs/sweeps/{datetime.now():%Y-%m-%d_%H-%M-%S}_{name}"]


def sweep_dir_of(argv: list[str]) -> Optional[Path]:
    given = [a.split("=", 1)[1].strip("'\"") for a in argv if a.startswith("hydra.sweep.dir=")]
    return Path(given[-1]) if given else None
