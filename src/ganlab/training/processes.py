"""Training in worker processes of their own (training/launch.py's entry point), that never outlive the
process that started them: Ctrl-C, SIGTERM or its death reach them, and a deadline stops them the same way
(each checkpoints its run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from ganlab.record.run_folder import claimed_here, writer_alive
from ganlab.record.sweep_plan import job_folders


class OutOfTime(Exception):
    """A command stopped (SIGTERM: it checkpointed its runs) at the deadline it was given."""


WORKER = "ganlab.training.launch"  # python -m WORKER train ARGS | resume RUN_DIR: as `ganlab train` / `ganlab resume`


def run_worker(*args: str, log: Optional[Path] = None, deadline: Optional[float] = None) -> int:
    """`train ARGS` or `resume RUN_DIR` in a worker process, its output appended to `log` (else shown); its
    exit code.
    Ctrl-C or SIGTERM to this process reaches it too, and it is sent SIGTERM if this process dies
    (even by SIGKILL): it checkpoints and marks its run, never outliving the process that started it.
    At `deadline` (time.monotonic()) it is stopped the same way and OutOfTime is raised."""
    return run_workers([list(args)], 1, log=log, deadline=deadline)[0]


def run_workers(commands: list[list[str]], at_once: int, log: Optional[Path] = None,
                deadline: Optional[float] = None) -> list[int]:
    """Each of `commands` in a worker process as run_worker runs one, `at_once` at a time, in order; their
    exit codes. Ctrl-C, SIGTERM or the deadline stops every running one (each checkpoints its run)."""
    waiting, running, codes = list(enumerate(commands)), {}, [0] * len(commands)
    out = open(log, "a") if log else None
    try:
        while waiting or running:
            while waiting and len(running) < at_once:
                i, args = waiting.pop(0)
                running[i] = _start(args, out)
            for i, child in list(running.items()):
                if child.poll() is not None:
                    codes[i] = running.pop(i).returncode
            if deadline is not None and time.monotonic() > deadline:
                _stop(running.values())
                raise OutOfTime(" ".join(commands[0][:1]))
            time.sleep(0.1 if running else 0)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (stop_workers_on_signals): the children stop too
        _stop(running.values())
        raise
    finally:
        if out:
            out.close()
    if any(code in (130, -2) for code in codes):
        raise KeyboardInterrupt
    return codes


def _start(args: list[str], out) -> subprocess.Popen:
    if out:
        out.write(f"$ ganlab {' '.join(args)}\n")
        out.flush()
    return subprocess.Popen([sys.executable, "-m", WORKER, *args], stdout=out,
                            stderr=subprocess.STDOUT if out else None, preexec_fn=_end_with_parent)


def _stop(children) -> None:
    """SIGTERM to each child still running, then wait for all: each checkpoints and marks its run."""
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        child.wait()


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
        # until the workers let go of their runs (a job in this very process, the basic launcher's, stops here)
        while time.monotonic() < deadline and any(writer_alive(j) and not claimed_here(j) for j in _jobs(sweep_dir)):
            time.sleep(0.2)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _jobs(sweep_dir: Optional[Path]) -> list[Path]:
    return job_folders(sweep_dir) if sweep_dir and sweep_dir.is_dir() else []


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
