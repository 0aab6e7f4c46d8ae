"""Finding and reading the runs under a folder: what `ganlab runs`, `compare` and `report` see."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from ganlab.run_folder import RunFolderError, writer_alive


@dataclass
class RunRecord:
    path: Path
    sweep: Optional[str]  # the sweep folder's name, for a sweep's job
    overrides: list[str]
    summary: dict[str, Any] = field(repr=False)
    problem: Optional[str] = None  # why summary.json could not be read

    @property
    def status(self) -> str:
        if self.problem:
            return "unreadable"
        status = self.summary.get("status", "not started")
        if status == "running" and writer_alive(self.path) is False:
            return "stopped"  # its process is gone (killed): ganlab resume continues it
        return status

    @property
    def quality(self) -> dict[str, Any]:
        return _object(self.summary.get("quality"))

    @property
    def best(self) -> dict[str, Any]:
        return _object(self.quality.get("best"))

    @property
    def started(self) -> str:
        return self.summary.get("started", "")

    def headline(self) -> str:
        """The run's answer in one line: its best score beside the real-vs-real floor, and which of its
        scores are at the floor (within 2 standard errors of it)."""
        best, floor, metric = self.best, _object(self.quality.get("floor")), self.quality.get("metric")
        if best.get("score") is None:
            return f"{self.status}; no quality score" if self.status != "completed" else "no quality score (metrics off)"
        se, floor_se = (x.get(f"{metric}_se") for x in (_object(best.get("scores")), floor))
        line = f"best {metric} {best['score']:.4g}" + (f" +- {se:.2g}" if se else "") + f" at epoch {best.get('epoch')}"
        if metric in floor:
            line += f" (real vs real {floor[metric]:.4g}" + (f" +- {floor_se:.2g})" if floor_se else ")")
        judged = _object(self.summary.get("at_the_floor"))
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
                "duration_s": self.summary.get("duration_s"), "metric": self.quality.get("metric"),
                "best_score": self.best.get("score"), "best_epoch": self.best.get("epoch"),
                **{k: final.get(k) for k in ("loss_d", "loss_g", "acc_real", "acc_fake")},
                "diagnoses": " ".join(d["kind"] for d in self.summary.get("diagnoses", [])),
                "error": self.problem or self.summary.get("error", "")}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def is_run(folder: Path) -> bool:
    return (folder / ".hydra" / "overrides.yaml").is_file() or (folder / "summary.json").is_file()


def load_run(folder: Path, sweep: Optional[str] = None) -> RunRecord:
    folder = Path(folder)
    overrides_file = folder / ".hydra" / "overrides.yaml"
    try:
        overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []
    except Exception:  # an unreadable file: the run is still listed
        overrides = []
    try:
        return RunRecord(folder, sweep, overrides, read_summary(folder))
    except RunFolderError as e:  # listed as unreadable, never fatal for the other runs
        return RunRecord(folder, sweep, overrides, {}, problem=str(e))


def read_summary(folder: Path) -> dict[str, Any]:
    """A run's summary.json ({} before it exists); RunFolderError naming the file when it is not a JSON object."""
    path = Path(folder) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        reason = f"{e.__class__.__name__}: {str(e).splitlines()[0][:120]}"
        raise RunFolderError(f"{path} cannot be read ({reason})") from None
    if not isinstance(summary, dict):
        raise RunFolderError(f"{path} does not hold a JSON object (found {type(summary).__name__})")
    return summary


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
    for folder in sorted(p for p in root.rglob("*") if p.is_dir() and ".hydra" not in p.parts):
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
    return {k: v for k, v in table.items() if len(set(v.values())) > 1}
