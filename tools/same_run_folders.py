"""Two run folders hold the same files with the same numbers (wall times aside): for a refactor, train one
run with each commit's source and compare them.

    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before/src python -m ganlab.cli train data.limit=480 trainer.epochs=3 hydra.run.dir=/tmp/a
    python -m ganlab.cli train data.limit=480 trainer.epochs=3 hydra.run.dir=/tmp/b
    python tools/same_run_folders.py /tmp/a /tmp/b
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch

TIMES = {"time_s"}  # columns that differ between any two runs


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    path = folder / name
    return [{k: v for k, v in r.items() if k not in TIMES} for r in csv.DictReader(open(path))] if path.is_file() else []


def differences(a: Path, b: Path) -> list[str]:
    files = [sorted(p.relative_to(f).as_posix() for p in f.rglob("*") if p.is_file()) for f in (a, b)]
    out = [f"files differ: {sorted(set(files[0]) ^ set(files[1]))}"] if files[0] != files[1] else []
    out += [f"{name} differs" for name in ("metrics.csv", "quality.csv") if rows(a, name) != rows(b, name)]
    last = [torch.load(f / "checkpoints" / "last.pt", weights_only=True) for f in (a, b)]
    if sorted(last[0]) != sorted(last[1]):
        out.append(f"checkpoint keys differ: {sorted(set(last[0]) ^ set(last[1]))}")
    for net in ("generator", "discriminator"):
        if any(not torch.equal(last[0][net][k], last[1][net][k]) for k in last[0][net]):
            out.append(f"{net} weights differ")
    return out


if __name__ == "__main__":
    found = differences(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(found) or "the same files, rows and weights")
    sys.exit(1 if found else 0)
