"""Sweeps: their folder name, cores shared between parallel jobs, and a table rebuilt from the job
folders (so it is right for an interrupted sweep too)."""

from __future__ import annotations

import csv
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ganlab.catalog import is_sweep, load_run
from ganlab.run_folder import RunFolderError

COLUMNS = ["job", "overrides", "status", "duration_s", "epochs", "steps", "metric", "best_score", "best_epoch",
           "loss_d", "loss_g", "acc_real", "acc_fake", "diagnoses", "error"]
PRINTED = ["job", "status", "duration_s", "steps", "metric", "best_score", "best_epoch", "acc_real", "acc_fake",
           "diagnoses"]


def sweep_name(overrides: list[str]) -> str:
    """A sweep folder's name from its command line: the fixed choices that name it, then the swept
    keys, e.g. `-m data=ring8 loss=bce,wgan_gp seed=1,2` -> ring8_loss-seed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [str(o.value()) for o in parsed if not o.is_sweep_override() and o.key_or_group in ("name", "data", "exp")]
    swept = [o.key_or_group.split(".")[-1] for o in parsed if o.is_sweep_override()]
    name = "_".join(fixed + (["-".join(swept)] if swept else []))
    return re.sub(r"[^\w.=-]+", "-", name) or "sweep"


def parallel_jobs(hydra_cfg: DictConfig) -> int:
    """How many jobs a sweep's launcher runs at once (joblib's n_jobs: -1 is one per core)."""
    if "joblib" not in str(hydra_cfg.launcher.get("_target_", "")).lower():
        return 1
    n_jobs, cores = int(hydra_cfg.launcher.n_jobs), os.cpu_count() or 1
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)


def threads_for(cfg: DictConfig, jobs: int) -> int | None:
    """Torch threads of one job when `jobs` share the machine: trainer.threads, else cores // jobs
    (None: torch's default, for a job alone)."""
    if cfg.trainer.threads or jobs <= 1:
        return cfg.trainer.threads
    return max(1, (os.cpu_count() or 1) // jobs)


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


def refuse_existing_sweep(sweep_dir: Path) -> None:
    """A new sweep never writes into a folder that holds one (its jobs' folders would be overwritten)."""
    if sweep_dir.is_dir() and (is_sweep(sweep_dir) or job_folders(sweep_dir)):
        raise RunFolderError(f"{sweep_dir} already holds a sweep; nothing was changed. Choose a new folder with "
                             f"hydra.sweep.dir=PATH")


def job_folders(sweep_dir: Path) -> list[Path]:
    """Job folders in launch order (Hydra's job number), each marked by its .hydra/ folder."""
    jobs = [p for p in Path(sweep_dir).iterdir() if (p / ".hydra" / "overrides.yaml").is_file()]
    return sorted(jobs, key=lambda p: (_job_number(p), p.name))


def _job_number(job: Path) -> int:
    try:
        return int(OmegaConf.load(job / ".hydra" / "hydra.yaml").hydra.job.num)
    except Exception:  # an unreadable or foreign file: list the job last
        return 1 << 30


def job_row(job: Path) -> dict[str, Any]:
    row = load_run(job).row()
    return {"job": job.name, **{k: row[k] for k in COLUMNS[1:]}}


def write_sweep_table(sweep_dir: Path) -> list[dict[str, Any]]:
    """Rebuild sweep.csv from the job folders; return its rows."""
    rows = [job_row(job) for job in job_folders(sweep_dir)]
    with open(Path(sweep_dir) / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def format_table(rows: list[dict[str, Any]], columns: list[str] = PRINTED) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def failed_jobs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] != "completed"]
