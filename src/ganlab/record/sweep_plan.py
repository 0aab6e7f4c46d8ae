"""What a sweep asked for: its swept keys and their settings, read from its overrides or from the plan in
its multirun.yaml (so that an interrupted sweep knows the jobs it never started), its job folders in
launch order, and each run's place (setting, seed)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from ganlab.config import path_safe
from ganlab.config.schema import HOW_NOT_WHAT
from ganlab.record.catalog import RunRecord
from ganlab.record.run_folder import RunFolderError


def job_folders(sweep_dir: Path) -> list[Path]:
    """Job folders in launch order (Hydra's job number), each marked by its .hydra/ folder."""
    jobs = [p for p in Path(sweep_dir).iterdir() if (p / ".hydra" / "overrides.yaml").is_file()]
    return sorted(jobs, key=lambda p: (_job_number(p), p.name))


def _job_number(job: Path) -> int:
    try:
        return int(OmegaConf.load(job / ".hydra" / "hydra.yaml").hydra.job.num)
    except Exception:  # an unreadable or foreign file: list the job last
        return 1 << 30


def swept_overrides(overrides: list[str]) -> list[tuple[str, str, list[str]]]:
    """(key, prefix, values) of each swept override."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        return [(o.key_or_group, o.input_line[: len(o.input_line) - len(o.input_line.lstrip("+~"))],
                 list(o.sweep_string_iterator())) for o in parsed if o.is_sweep_override()]
    except Exception as e:  # Hydra's own message names the override; a glob(...) needs its config loader
        raise RunFolderError(f"cannot expand the overrides {' '.join(overrides)} ({str(e).splitlines()[0]}); list "
                             f"the values instead of a glob") from None


def swept_settings(overrides: list[str]) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of the swept values, each as ((key, value), ...) sorted by key: one per job."""
    swept = swept_overrides(overrides)
    keys = [k for k, _, _ in swept]
    return [tuple(sorted(zip(keys, combo))) for combo in itertools.product(*(v for _, _, v in swept))]


def setting_and_seed(run: RunRecord, keys: set[str]) -> tuple[tuple[tuple[str, str], ...], Optional[int]]:
    """A run's setting (its values of the swept `keys`) and its seed."""
    seed = _values(run.overrides).get("seed", "")
    return _setting(run.overrides, keys), int(seed) if seed.isdigit() else None


def _setting(overrides: list[str], keys: set[str]) -> tuple[tuple[str, str], ...]:
    values = _values(overrides)
    return tuple((k, values[k]) for k in sorted(keys) if k in values)


def _values(overrides: list[str]) -> dict[str, str]:
    return {o.partition("=")[0].lstrip("+~"): o.partition("=")[2] for o in overrides}


def planned_overrides(sweep_dir: Path) -> Optional[list[str]]:
    """The overrides a grid sweep was started with (multirun.yaml); None for a sweep with no plan ganlab
    can expand (Optuna's, a glob(...) of config files) or without a readable multirun.yaml."""
    try:
        hydra = OmegaConf.load(Path(sweep_dir) / "multirun.yaml").hydra
        if "BasicSweeper" not in str(hydra.sweeper.get("_target_", "")):
            return None
        overrides = [str(o) for o in hydra.overrides.task]
        swept_settings(overrides)  # a glob needs Hydra's config loader
        return overrides
    except Exception:  # an unreadable or foreign file, or a plan only Hydra can expand: the job folders tell
        return None


def planned_config_dir(sweep_dir: Path) -> Optional[str]:
    """The --config-dir a sweep was started with (multirun.yaml's command-line config source), if any."""
    try:
        sources = OmegaConf.load(Path(sweep_dir) / "multirun.yaml").hydra.runtime.config_sources
        return next((str(s.path) for s in sources if s.provider == "command-line" and s.schema == "file"), None)
    except Exception:  # an unreadable or foreign file: the jobs are started without one
        return None


def missing_jobs(overrides: list[str], jobs: list[RunRecord]) -> list[list[str]]:
    """The planned jobs that have no folder (an interrupted sweep never started them), each as the overrides
    Hydra's BasicSweeper gives it (its spelling: `False` for false, `0.0002` for 2e-4, as its siblings')."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = {k for k, _, _ in swept_overrides(overrides)}
    have = {setting_and_seed(r, keys)[0] for r in jobs}
    planned = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)[0]
    return [job for job in planned if _setting(job, keys) not in have]


def job_folder_name(job: list[str]) -> str:
    """The folder name Hydra gives a job of these overrides: sorted, less the keys that say how it runs."""
    return path_safe(",".join(sorted(o for o in job if o.lstrip("+~").partition("=")[0] not in HOW_NOT_WHAT)))
