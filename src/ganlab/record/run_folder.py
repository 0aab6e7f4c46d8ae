"""The run folder: every file a run leaves, each written through one place, atomically.

A process claims a run folder before it writes anything there: a new run creates `.ganlab.lock`
exclusively (two runs started together into one folder cannot both win) and holds an flock on
it while it runs, so a folder's writer is known and a killed run is told from a live one.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import torch

# Every name ganlab writes at the top of a run folder, here alone: a new run refuses a folder holding
# any of them, so no file of the user's is ever overwritten, and only these are removed when a run
# that trained nothing is abandoned.
HYDRA_DIR, LOG = ".hydra", "train.log"  # what Hydra writes into a sweep job's folder before the job starts
METRICS_CSV, QUALITY_CSV, CLASSES_CSV = "metrics.csv", "quality.csv", "classes.csv"
SUMMARY_JSON, HISTORY_PNG, CLOSEST_PAIRS_PNG = "summary.json", "history.png", "closest_pairs.png"
SAMPLES, CHECKPOINTS, TENSORBOARD = "samples", "checkpoints", "tensorboard"
MLFLOW_JSON = "mlflow.json"  # where the run's MLflow run is, so a resume continues it
REPORT_HTML = "report.html"
LAST_PT, BEST_PT = "last.pt", "best.pt"  # in checkpoints/: the latest state (resume), the best evaluation's
EVALUATED = ("best", "last")  # the checkpoints `ganlab eval` scores, each into eval_<which>.json
LOCK = ".ganlab.lock"
OUTPUT_NAMES = (HYDRA_DIR, LOG, METRICS_CSV, QUALITY_CSV, CLASSES_CSV, SUMMARY_JSON, HISTORY_PNG, CLOSEST_PAIRS_PNG,
                SAMPLES, CHECKPOINTS, TENSORBOARD, MLFLOW_JSON, REPORT_HTML, *(f"eval_{c}.json" for c in EVALUATED),
                LOCK)
HYDRA_NAMES = (HYDRA_DIR, LOG)
# Files that mark a folder as holding a ganlab run's record (a new run never writes into one).
RUN_MARKERS = (SUMMARY_JSON, METRICS_CSV, f"{CHECKPOINTS}/{LAST_PT}")


def eval_json(which: str) -> str:
    """The file `ganlab eval --checkpoint which` writes."""
    return f"eval_{which}.json"


def is_run(folder: Path) -> bool:
    """A folder that holds a ganlab run, finished or not: its record, or the config Hydra wrote for it."""
    return any((Path(folder) / name).exists() for name in (*RUN_MARKERS, CHECKPOINTS, f"{HYDRA_DIR}/config.yaml"))

_claims: dict[tuple[Path, str], "Claim"] = {}  # (folder, lock file) this process holds


class RunFolderError(RuntimeError):
    """The run folder cannot be used or written; the message names the path and the fix."""


class Claim:
    """This process's hold on a run folder: an open, flock-ed lock file holding pid and host."""

    def __init__(self, path: Path, fd: int, created_folder: bool, lock: str = LOCK):
        self.path, self.fd, self.created_folder, self.lock = path, fd, created_folder, lock

    def release(self) -> None:
        os.close(self.fd)
        _claims.pop((self.path, self.lock), None)


def _lock(fd: int, lock_path: Path) -> None:
    """flock the claim (held until the process ends, even by SIGKILL) and record who holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = lock_path.read_text(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderError(f"{lock_path.parent} is being written by another ganlab process ({holder}); wait for "
                             f"it to end or stop it, then try again") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())


def claim_new(path: Path, allow: tuple[str, ...] = ()) -> Claim:
    """Claim a folder for a new run, creating it if needed; refuse one holding ganlab's file names
    (but `allow`) or claimed by another process."""
    path = Path(os.path.abspath(path))
    if (path, LOCK) in _claims:
        return _claims[(path, LOCK)]
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{path} is a file, not a folder; choose a new folder with hydra.run.dir=PATH")
    present = [n for n in OUTPUT_NAMES if n not in allow and (path / n).exists()]
    if present:
        what = "a run" if any((path / m).exists() for m in RUN_MARKERS) else "files ganlab would write"
        raise RunFolderError(f"{path} already holds {what} ({', '.join(present)}); nothing was changed. Choose a new "
                             f"folder with hydra.run.dir=PATH" + (", or continue that run with: ganlab resume "
                                                                  f"{path}" if what == "a run" else ""))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = _make_folder(path)
        fd = os.open(path / LOCK, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    except FileExistsError as e:
        if e.filename != str(path / LOCK):
            raise RunFolderError(f"cannot write the run folder {path} ({e.filename} is a file); pick a writable "
                                 f"place with hydra.run.dir=PATH") from None
        raise RunFolderError(f"{path} was claimed by another ganlab run started at the same moment; choose a new "
                             f"folder with hydra.run.dir=PATH") from None
    except OSError as e:
        raise RunFolderError(f"cannot write the run folder {path} ({e.strerror or e}); pick a writable place with "
                             f"hydra.run.dir=PATH") from None
    _lock(fd, path / LOCK)
    _claims[(path, LOCK)] = Claim(path, fd, created)
    return _claims[(path, LOCK)]


SWEEP_LOCK = ".ganlab-sweep.lock"
STUDY_LOCK = ".ganlab-study.lock"  # held by the one process that trains a study's rounds


def claim_sweep(path: Path) -> None:
    """Claim a sweep folder for this process (held until it ends): of two sweeps started into one
    folder at once, exactly one gets it; the other writes nothing."""
    path = Path(os.path.abspath(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / SWEEP_LOCK, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    except FileExistsError:
        raise RunFolderError(f"{path} holds another sweep (started at the same moment, or earlier); nothing was "
                             f"changed. Choose a new folder with hydra.sweep.dir=PATH") from None
    except OSError as e:
        raise RunFolderError(f"cannot write the sweep folder {path} ({e.strerror or e}); pick a writable place with "
                             f"hydra.sweep.dir=PATH") from None
    _lock(fd, path / SWEEP_LOCK)
    _claims[(path, SWEEP_LOCK)] = Claim(path, fd, False, SWEEP_LOCK)


def _make_folder(path: Path) -> bool:
    """mkdir; True when this call made the folder (False when it was there)."""
    try:
        path.mkdir()
        return True
    except FileExistsError:
        if not path.is_dir():
            raise
        return False


def claim_existing(path: Path, lock: str = LOCK) -> Claim:
    """Claim a folder to continue what it holds (a run; with `lock`, a sweep or a study), creating it
    if needed; refuse one another live process holds. Held until this process ends."""
    path = Path(os.path.abspath(path))
    if (path, lock) in _claims:
        return _claims[(path, lock)]
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / lock, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as e:
        raise RunFolderError(f"cannot write the folder {path} ({e.strerror or e}); fix its permissions") from None
    _lock(fd, path / lock)
    _claims[(path, lock)] = Claim(path, fd, False, lock)
    return _claims[(path, lock)]


def claimed_here(path: Path) -> bool:
    """Whether this process holds the run folder's claim (a sweep's job run in the sweep's own process)."""
    return (Path(os.path.abspath(path)), LOCK) in _claims


def writer_alive(path: Path) -> Optional[bool]:
    """Whether a process still holds the run folder's claim (None: no claim file to tell by)."""
    try:
        fd = os.open(Path(path) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as e:
        return True if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else None
    finally:
        os.close(fd)


def check_user_output(path: Path, force: bool, flag: str = "--out") -> None:
    """A path the user named for a command to write: never inside a run's own record (its samples/,
    checkpoints/ or any file a run writes), and never over an existing file unless `force`."""
    path = Path(os.path.abspath(path))
    for folder in (path.parent, *path.parent.parents):
        if any((folder / marker).exists() for marker in RUN_MARKERS):
            inside = path.relative_to(folder).parts[0]
            if inside in OUTPUT_NAMES:
                raise RunFolderError(f"{flag} {path} is inside the record of the run {folder} ({inside}); nothing was "
                                     f"written. Write elsewhere, e.g. {flag} {folder / ('my_' + path.name)}")
            break
    if path.is_dir():
        raise RunFolderError(f"{flag} {path} is a folder; name a file in it, e.g. {flag} {path / 'samples.png'}")
    if path.exists() and not force:
        raise RunFolderError(f"{flag} {path} already exists; nothing was written. Choose another name, or add --force "
                             f"to replace it")


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
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
        if isinstance(e, RuntimeError) and "writ" not in str(e).lower():
            raise
        raise RunFolderError(f"cannot write {path} ({_reason(e)}); the previous version is kept. {_fix(e, path)}") from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error).splitlines()[0][:160]


def _fix(error: BaseException, path: Path) -> str:
    """The hint that fits the failure: a full disk, no permission, a folder in the way, a folder gone."""
    code = getattr(error, "errno", None)
    try:
        nearly_full = shutil.disk_usage(path.parent).free < 64 << 20
    except OSError:
        nearly_full = False
    if code == errno.ENOSPC or (code is None and nearly_full):
        return "Free disk space, then continue the run with: ganlab resume RUN_DIR"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Make {path.parent} writable, then continue the run with: ganlab resume RUN_DIR"
    if code == errno.EISDIR or path.is_dir():
        return f"{path} is a folder: move it away or name another file"
    if code == errno.ENOENT or not path.parent.is_dir():
        return f"{path.parent} is gone (moved or deleted?); start the run again or restore the folder"
    return "Check the disk and the folder's permissions, then continue the run with: ganlab resume RUN_DIR"


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.samples = self.path / SAMPLES
        self.checkpoints = self.path / CHECKPOINTS
        self.metrics_csv = self.path / METRICS_CSV
        self.quality_csv = self.path / QUALITY_CSV
        self.classes_csv = self.path / CLASSES_CSV  # a conditional run's per-class scores
        self.summary_json = self.path / SUMMARY_JSON
        self.history_png = self.path / HISTORY_PNG
        self._columns: dict[Path, list[str]] = {}

    def create(self, allow: tuple[str, ...] = ()) -> "RunFolder":
        """Claim the folder for a new run (made if needed); refuse one that holds a run or files ganlab writes."""
        claim_new(self.path, allow)
        self._make_subfolders()
        return self

    def restart(self) -> "RunFolder":
        """Start a run that was killed before its first checkpoint over, in its own folder: what it
        wrote is removed (its config in .hydra/ and its log stay)."""
        claim_existing(self.path)
        for name in OUTPUT_NAMES:
            if name not in (*HYDRA_NAMES, LOCK):
                _remove(self.path / name)
        self._make_subfolders()
        return self

    def _make_subfolders(self) -> None:
        try:
            for folder in (self.samples, self.checkpoints):
                folder.mkdir(exist_ok=True)
        except OSError as e:
            raise RunFolderError(f"cannot write the run folder {self.path} ({e.strerror}); "
                                 f"pick a writable place with hydra.run.dir=PATH") from e

    def abandon(self) -> None:
        """After an error before training: remove what this process wrote, and the folder if it made it.
        A folder it did not claim, or where training began, is left as it is."""
        claim = _claims.get((Path(os.path.abspath(self.path)), LOCK))
        if claim is None or any((self.path / m).exists() for m in RUN_MARKERS):
            return
        for name in OUTPUT_NAMES:
            _remove(self.path / name)
        claim.release()
        if claim.created_folder and not any(self.path.iterdir()):
            self.path.rmdir()

    def release(self) -> None:
        claim = _claims.get((Path(os.path.abspath(self.path)), LOCK))
        if claim is not None:
            claim.release()

    def reopen(self, step: int) -> "RunFolder":
        """Continue a run from a checkpoint at `step`: rows logged after it, and a row a kill cut
        short, are dropped (they are logged again), so each step appears once in the CSVs."""
        if not (self.checkpoints / LAST_PT).is_file():
            raise RunFolderError(f"{self.path} holds no {CHECKPOINTS}/{LAST_PT} to resume from")
        claim_existing(self.path)
        self._make_subfolders()  # samples/ may have been deleted to save space
        for path in (self.metrics_csv, self.quality_csv, self.classes_csv):
            if path.exists():
                columns, rows = _complete_rows(path)
                if not columns:  # empty or header cut: written anew from the first row
                    path.unlink()
                    continue
                self._columns[path] = columns
                kept = [r for r in rows if int(r["step"]) <= step]

                def rewrite(tmp: Path, columns=columns, rows=kept) -> None:
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
                # extrasaction: a run resumed from an earlier ganlab keeps its CSV's columns
                writer = csv.DictWriter(f, fieldnames=self._columns[path], extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(row)
        except OSError as e:
            raise RunFolderError(f"cannot write {path} ({e.strerror or e}); free disk space or fix permissions, "
                                 f"then continue with: ganlab resume {self.path}") from e

    def read_columns(self, path: Path) -> dict[str, list[float]]:
        """A CSV of the run as columns of floats (blank cells become NaN; a row cut by a kill is left out)."""
        if not path.exists():
            return {}
        _, rows = _complete_rows(path)
        return {key: [float(r[key]) if r[key] != "" else float("nan") for r in rows] for key in (rows[0] if rows else {})}

    def save_checkpoint(self, state: dict[str, Any], name: str = LAST_PT) -> Path:
        path = self.checkpoints / name
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        return path

    def sample_path(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:04d}.png"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _complete_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV's header and its whole rows: a last line without its newline (cut by a kill), and a row
    with missing cells or a step that is not a number, are left out."""
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    reader = csv.DictReader(lines)
    columns = list(reader.fieldnames or [])
    rows = [r for r in reader if None not in r and None not in r.values() and r.get("step", "").strip().isdigit()]
    return columns, rows
