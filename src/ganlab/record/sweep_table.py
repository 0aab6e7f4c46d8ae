"""A sweep's table: sweep.csv rebuilt from its job folders (and the planned jobs that have none), the
printed table, and what an interrupted sweep left, in one line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Optional

from ganlab.record.catalog import load_run
from ganlab.record.sweep_plan import job_folder_name, job_folders, missing_jobs, planned_overrides


COLUMNS = ["job", "overrides", "status", "duration_s", "epochs", "steps", "metric", "best_score", "best_epoch",
           "loss_d", "loss_g", "acc_real", "acc_fake", "diagnoses", "error"]


PRINTED = ["job", "status", "duration_s", "steps", "metric", "best_score", "best_epoch", "acc_real", "acc_fake",
           "diagnoses"]


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


def interrupted_sweep(sweep_dir: Optional[Path]) -> str:
    """What an interrupted sweep left, in one line, with how to continue it."""
    if sweep_dir is None or not sweep_dir.is_dir():
        return "sweep interrupted before its first job"
    rows = write_sweep_table(sweep_dir)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("completed", "interrupted", "stopped", "not started")}
    said = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return f"sweep interrupted ({said}); continue it with: ganlab sweep {sweep_dir} --resume"
