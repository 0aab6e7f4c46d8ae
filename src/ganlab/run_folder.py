"""The run folder: every file a run leaves, each written through one place, atomically."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

# Files that mark a folder as holding a ganlab run (a new run never writes into one).
RUN_MARKERS = ("summary.json", "metrics.csv", "checkpoints/last.pt")


class RunFolderError(RuntimeError):
    """The run folder cannot be used or written; the message names the path and the fix."""


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, flush it to disk, then rename over the
    old file: a kill or a full disk never leaves a truncated file, and the old one stays."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise RunFolderError(f"cannot write {path} ({e.strerror or e}); the previous version is kept. Free disk "
                             f"space or fix permissions, then continue the run with: ganlab resume RUN_DIR") from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.metrics_csv = self.path / "metrics.csv"
        self.quality_csv = self.path / "quality.csv"
        self.summary_json = self.path / "summary.json"
        self.history_png = self.path / "history.png"
        self._columns: dict[Path, list[str]] = {}

    def refuse_existing_run(self) -> None:
        existing = [m for m in RUN_MARKERS if (self.path / m).exists()]
        if existing:
            raise RunFolderError(f"{self.path} already holds a run ({', '.join(existing)}); "
                                 f"choose a new folder with hydra.run.dir=PATH")

    def create(self) -> "RunFolder":
        """Make the folder for a new run; refuse one that already holds a run."""
        self.refuse_existing_run()
        try:
            for folder in (self.path, self.samples, self.checkpoints):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise RunFolderError(f"cannot write the run folder {self.path} ({e.strerror}); "
                                 f"pick a writable place with hydra.run.dir=PATH") from e
        return self

    def reopen(self, step: int) -> "RunFolder":
        """Continue a run from a checkpoint at `step`: rows logged after it are dropped (they are
        logged again), so each step appears once in the CSVs."""
        if not (self.path / "checkpoints" / "last.pt").is_file():
            raise RunFolderError(f"{self.path} holds no checkpoints/last.pt to resume from")
        for path in (self.metrics_csv, self.quality_csv):
            if path.exists():
                with open(path, newline="") as f:
                    reader = csv.DictReader(f)
                    columns, rows = list(reader.fieldnames or []), [r for r in reader if int(r["step"]) <= step]
                self._columns[path] = columns

                def rewrite(tmp: Path, columns=columns, rows=rows) -> None:
                    with open(tmp, "w", newline="") as f:
                        writer = csv.DictWriter(f, fieldnames=columns)
                        writer.writeheader()
                        writer.writerows(rows)

                atomic_write(path, rewrite)
        for leftover in self.path.rglob(".*.tmp"):  # temporary files of writes a kill interrupted
            leftover.unlink(missing_ok=True)
        return self

    def append_row(self, path: Path, row: dict[str, Any]) -> None:
        """Append one row to a CSV of the run (header first), flushed so that a crash keeps it."""
        new = path not in self._columns
        if new:
            self._columns[path] = list(row)
        try:
            with open(path, "w" if new else "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._columns[path])
                if new:
                    writer.writeheader()
                writer.writerow(row)
        except OSError as e:
            raise RunFolderError(f"cannot write {path} ({e.strerror or e}); free disk space or fix permissions, "
                                 f"then continue with: ganlab resume {self.path}") from e

    def read_columns(self, path: Path) -> dict[str, list[float]]:
        """A CSV of the run as columns of floats (blank cells become NaN)."""
        if not path.exists():
            return {}
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {key: [float(r[key]) if r[key] != "" else float("nan") for r in rows] for key in (rows[0] if rows else {})}

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.summary_json, lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))

    def mark_failed(self, error: BaseException) -> None:
        """Record a failure that happened before training could write its own summary."""
        try:
            status = json.loads(self.summary_json.read_text()).get("status")
        except (OSError, ValueError):
            status = None
        if status in (None, "running"):
            self.write_summary({"status": "failed", "error": f"{error.__class__.__name__}: {error}"})

    def save_checkpoint(self, state: dict[str, Any], name: str = "last.pt") -> Path:
        path = self.checkpoints / name
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        return path

    def sample_path(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:04d}.png"
