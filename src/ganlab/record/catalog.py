"""Finding and reading the runs under a folder: what `ganlab runs`, `compare` and `report` see."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from ganlab.config.schema import HOW_NOT_WHAT
from ganlab.record.run_folder import HYDRA_DIR, RunFolderError, is_run, writer_alive
from ganlab.record.summary import Summary


@dataclass
class RunRecord:
    path: Path
    sweep: Optional[str]  # the sweep folder's name, for a sweep's job
    overrides: list[str]
    summary: Summary = field(repr=False)
    problem: Optional[str] = None  # why summary.json could not be read

    def __post_init__(self) -> None:
        self.summary = Summary(self.summary)  # a plain dict (summary.json's object) is one too

    @property
    def status(self) -> str:
        if self.problem:
            return "unreadable"
        status = self.summary.status
        if status == "running" and writer_alive(self.path) is False:
            return "stopped"  # its process is gone (killed): ganlab resume continues it
        return status

    @property
    def quality(self) -> dict[str, Any]:
        return self.summary.quality

    @property
    def best(self) -> dict[str, Any]:
        return self.summary.best

    @property
    def started(self) -> str:
        return self.summary.get("started", "")

    def headline(self) -> str:
        """The run's answer in one line: its best score beside the real-vs-real floor, and which of its
        scores are at the floor (within 2 standard errors of it)."""
        s = self.summary
        best, floor, metric = s.best, s.floor, s.metric
        if best.get("score") is None:
            return f"{self.status}; no quality score" if self.status != "completed" else "no quality score (metrics off)"
        se, floor_se = s.best_scores.get(f"{metric}_se"), floor.get(f"{metric}_se")
        line = f"best {metric} {best['score']:.4g}" + (f" +- {se:.2g}" if se else "") + f" at epoch {best.get('epoch')}"
        ties = s.quality.get("tied_with_best") or []
        if ties:
            line += (f" ({len(ties)} other evaluation{'s' if len(ties) > 1 else ''}, epochs {min(ties):g}-{max(ties):g}, "
                     f"within noise of it)")
        if metric in floor:
            line += f" (real vs real {floor[metric]:.4g}" + (f" +- {floor_se:.2g})" if floor_se else ")")
        judged = s.at_the_floor
        if judged.get("not") or judged.get("at"):
            line += ("; every score is at the floor" if not judged.get("not") else
                     f"; at the floor: {', '.join(judged.get('at') or ['none'])}; not: {', '.join(judged['not'])}")
        return line

    def row(self) -> dict[str, Any]:
        """The run as one flat row, for tables and --json."""
        final = self.summary.get("final") or {}
        return {"run": str(self.path), "name": self.summary.get("name", self.path.name), "sweep": self.sweep,
                "overrides": " ".join(self.overrides), "status": self.status, "started": self.started,
                "epochs": self.summary.get("epochs_done"), "steps": self.summary.get("steps_done"),
                "duration_s": self.summary.get("duration_s"), "metric": self.summary.metric,
                "best_score": self.best.get("score"), "best_epoch": self.best.get("epoch"),
                **{k: final.get(k) for k in ("loss_d", "loss_g", "acc_real", "acc_fake")},
                "diagnoses": " ".join(self.summary.diagnoses), "error": self.problem or self.summary.error}


def load_run(folder: Path, sweep: Optional[str] = None) -> RunRecord:
    folder = Path(folder)
    overrides_file = folder / HYDRA_DIR / "overrides.yaml"
    try:
        overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []
    except Exception:  # an unreadable file: the run is still listed
        overrides = []
    try:
        return RunRecord(folder, sweep, overrides, Summary.read(folder))
    except RunFolderError as e:  # listed as unreadable, never fatal for the other runs
        return RunRecord(folder, sweep, overrides, Summary(), problem=str(e))


STUDY_STATE = "study.json"  # the file that marks a `ganlab study` folder (its design and looks)


def is_study(folder: Path) -> bool:
    return (Path(folder) / STUDY_STATE).is_file()


def is_sweep(folder: Path) -> bool:
    return (folder / "multirun.yaml").is_file() or (folder / "sweep.csv").is_file()


def find_runs(root: Path) -> list[RunRecord]:
    """Every run under root (a run folder, a sweep folder, or a folder holding them), newest first."""
    root = Path(root)
    if is_run(root) and not is_sweep(root):
        return [load_run(root)]
    found: list[RunRecord] = []
    for folder in sorted(p for p in root.rglob("*") if p.is_dir() and HYDRA_DIR not in p.parts):
        if is_run(folder):
            parent = folder.parent
            found.append(load_run(folder, parent.name if is_sweep(parent) else None))
    return sorted(found, key=lambda r: (r.started, str(r.path)), reverse=True)


def origin(run: RunRecord) -> str:
    """The sweep a run came from (every round of one `ganlab study` is one), else its folder."""
    parent = run.path.parent
    return str(parent.parent if is_study(parent.parent) else parent)


def swept_values(runs: list[RunRecord]) -> dict[str, dict[Path, str]]:
    """The override keys whose values differ between runs: key -> {run folder: value}."""
    table: dict[str, dict[Path, str]] = {}
    for run in runs:
        for override in run.overrides:
            key, _, value = override.partition("=")
            table.setdefault(key.lstrip("+~"), {})[run.path] = value
    for values in table.values():  # a run without the override ran with the config's default
        for run in runs:
            values.setdefault(run.path, "(default)")
    table = {key: _each_number_spelt_once(values) for key, values in table.items()}
    return {k: v for k, v in table.items() if len(set(v.values())) > 1 and k not in HOW_NOT_WHAT}


def _each_number_spelt_once(values: dict[Path, str]) -> dict[Path, str]:
    """A key's values with one spelling per number, the first run's: Hydra's sweeper writes optim.lr=2e-4 as
    0.0002, a job started by hand (or a resumed round's) as typed, and they are one setting."""
    spelling: dict[float, str] = {}
    out = {}
    for path, value in values.items():
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        out[path] = value if math.isnan(number) else spelling.setdefault(number, value)
    return out
