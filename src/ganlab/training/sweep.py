"""Sweeps: their folder name, cores shared between parallel jobs, a table rebuilt from the job folders
and the plan in multirun.yaml (so it is right for an interrupted sweep too, jobs never started
included), completing an interrupted sweep in place, and stopping its workers with it."""

from __future__ import annotations

import csv
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional

from omegaconf import DictConfig, OmegaConf

from ganlab.config import path_safe
from ganlab.config.schema import HOW_NOT_WHAT
from ganlab.record.catalog import RunRecord, is_sweep, load_run
from ganlab.record.run_folder import SWEEP_LOCK, RunFolderError, claim_existing, claimed_here, writer_alive

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
    """Rebuild sweep.csv from the job folders, and the planned jobs that have none (not started);
    return its rows."""
    folders = job_folders(sweep_dir)
    rows = [job_row(job) for job in folders]
    overrides = planned_overrides(sweep_dir)
    if overrides:
        rows += [{"job": job_folder_name(job), "overrides": " ".join(job), "status": "not started"}
                 for job in missing_jobs(overrides, [load_run(f) for f in folders])]
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


# ------------------------------------------------------------------ the jobs a sweep asked for
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


def settings(overrides: list[str]) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of the swept values, each as ((key, value), ...) sorted by key: one per job."""
    swept = swept_overrides(overrides)
    keys = [k for k, _, _ in swept]
    return [tuple(sorted(zip(keys, combo))) for combo in itertools.product(*(v for _, _, v in swept))]


def place(run: RunRecord, keys: set[str]) -> tuple[tuple[tuple[str, str], ...], Optional[int]]:
    """A run's setting (its values of the swept `keys`) and its seed."""
    values = {o.partition("=")[0].lstrip("+~"): o.partition("=")[2] for o in run.overrides}
    seed = values.get("seed", "")
    return tuple((k, values[k]) for k in sorted(keys) if k in values), int(seed) if seed.isdigit() else None


def planned_overrides(sweep_dir: Path) -> Optional[list[str]]:
    """The overrides a grid sweep was started with (multirun.yaml); None for a sweep with no plan ganlab
    can expand (Optuna's, a glob(...) of config files) or without a readable multirun.yaml."""
    try:
        hydra = OmegaConf.load(Path(sweep_dir) / "multirun.yaml").hydra
        if "BasicSweeper" not in str(hydra.sweeper.get("_target_", "")):
            return None
        overrides = [str(o) for o in hydra.overrides.task]
        settings(overrides)  # a glob needs Hydra's config loader
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
    """The planned jobs (each as its overrides) that have no folder: an interrupted sweep never started them."""
    swept = swept_overrides(overrides)
    keys = {k for k, _, _ in swept}
    have = {place(r, keys)[0] for r in jobs}
    fixed = [o for o in overrides if o.lstrip("+~").partition("=")[0] not in keys]
    prefixes = {k: p for k, p, _ in swept}
    return [fixed + [f"{prefixes[k]}{k}={v}" for k, v in setting] for setting in settings(overrides)
            if setting not in have]


def job_folder_name(job: list[str]) -> str:
    """The folder name Hydra gives a job of these overrides: sorted, less the keys that say how it runs."""
    return path_safe(",".join(sorted(o for o in job if o.lstrip("+~").partition("=")[0] not in HOW_NOT_WHAT)))


def forget_unstarted_sweep(sweep_dir: Path) -> bool:
    """Remove a sweep folder that a sweep claimed and was stopped in before it wrote its plan (it holds
    its lock file alone, and no process holds that): True when it was removed, so the sweep starts anew."""
    if [p.name for p in Path(sweep_dir).iterdir()] != [SWEEP_LOCK]:
        return False
    claim_existing(sweep_dir, SWEEP_LOCK).release()  # refused while a live sweep holds it
    (Path(sweep_dir) / SWEEP_LOCK).unlink()
    Path(sweep_dir).rmdir()
    return True


def resume_sweep(sweep_dir: Path, say=print, log: Optional[Path] = None, deadline: Optional[float] = None) -> None:
    """Complete an interrupted sweep in place: resume its stopped jobs (and those whose folder Hydra made
    but that never trained), then train the jobs it never started into the same folder (one after another; each uses every core). Refused while another
    process (the sweep itself, or another completing it) holds the folder."""
    claim_existing(sweep_dir, SWEEP_LOCK)
    jobs = [load_run(p) for p in job_folders(sweep_dir)]
    for job in jobs:  # "not started": Hydra made its folder, and the sweep stopped before it trained
        if job.status in ("stopped", "interrupted", "not started"):
            say(f"resuming {job.path.name}")
            run_ganlab("resume", str(job.path), log=log, deadline=deadline)
    overrides, config_dir = planned_overrides(sweep_dir), planned_config_dir(sweep_dir)
    for job in missing_jobs(overrides, jobs) if overrides else []:
        folder = Path(sweep_dir).resolve() / job_folder_name(job)
        say(f"starting {folder.name}")
        run_ganlab("train", *(["--config-dir", config_dir] if config_dir else []), *job,
                   f"hydra.run.dir='{folder}'", log=log, deadline=deadline)  # quoted: the name holds '=' and ','


class OutOfTime(Exception):
    """A command stopped (SIGTERM: it checkpointed its runs) at the deadline it was given."""


def run_ganlab(*args: str, log: Optional[Path] = None, deadline: Optional[float] = None) -> int:
    """A ganlab command in its own process, its output appended to `log` (else shown); its exit code.
    Ctrl-C or SIGTERM to this process reaches it too, and it is sent SIGTERM if this process dies
    (even by SIGKILL): it checkpoints and marks its run, never outliving the process that started it.
    At `deadline` (time.monotonic()) it is stopped the same way and OutOfTime is raised."""
    out = open(log, "a") if log else None
    try:
        if out:
            out.write(f"$ ganlab {' '.join(args)}\n")
            out.flush()
        child = subprocess.Popen([sys.executable, "-m", "ganlab.cli", *args], stdout=out,
                                 stderr=subprocess.STDOUT if out else None, preexec_fn=_end_with_parent)
        try:
            code = child.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGTERM)
            child.wait()
            raise OutOfTime(" ".join(args[:1])) from None
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (stop_workers_on_signals): the child stops too
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            child.wait()
            raise
    finally:
        if out:
            out.close()
    if code in (130, -2):
        raise KeyboardInterrupt
    return code


def _end_with_parent() -> None:
    """In a child before it starts: Linux sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


@contextmanager
def stop_workers_on_signals(sweep_dir: Optional[Path], wait_s: float = 120) -> Iterator[None]:
    """Ctrl-C or SIGTERM to a sweep's process reaches its parallel workers too; each checkpoints, is
    marked interrupted and lets go of its run before the sweep stops (as KeyboardInterrupt)."""
    def forward(signum, frame):
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        for child in _children(os.getpid()):
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while sweep_dir and time.monotonic() < deadline and any(  # a job of this process (basic launcher) stops here
                writer_alive(job) and not claimed_here(job) for job in (job_folders(sweep_dir) if sweep_dir.is_dir() else [])):
            time.sleep(0.2)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux's /proc; none found elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def sweep_dir_of(argv: list[str]) -> Optional[Path]:
    given = [a.split("=", 1)[1].strip("'\"") for a in argv if a.startswith("hydra.sweep.dir=")]
    return Path(given[-1]) if given else None


def interrupted_sweep(sweep_dir: Optional[Path]) -> str:
    """What an interrupted sweep left, in one line, with how to continue it."""
    if sweep_dir is None or not sweep_dir.is_dir():
        return "sweep interrupted before its first job"
    rows = write_sweep_table(sweep_dir)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("completed", "interrupted", "stopped", "not started")}
    said = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return f"sweep interrupted ({said}); continue it with: ganlab sweep {sweep_dir} --resume"
