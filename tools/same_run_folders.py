"""Two run folders, or two trees of them (a sweep's, a study's), hold the same files with the same numbers
(wall times aside): for a refactor, train with each commit's source and compare them.

    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before/src python -m ganlab.cli train data.limit=480 trainer.epochs=3 hydra.run.dir=/tmp/a/run
    python -m ganlab.cli train data.limit=480 trainer.epochs=3 hydra.run.dir=/tmp/b/run
    python tools/same_run_folders.py /tmp/a /tmp/b     # every run folder under a, against its twin under b
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import torch

TIMES = {"time_s"}  # columns that differ between any two runs
CLOCKS = {"started", "ended", "duration_s", "seconds", "eval_seconds", "train_seconds", "steps_per_s", "eval_share",
          "images_per_s"}  # summary.json's wall times


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    path = folder / name
    return [{k: v for k, v in r.items() if k not in TIMES} for r in csv.DictReader(open(path))] if path.is_file() else []


def differences(a: Path, b: Path) -> list[str]:
    files = [sorted(p.relative_to(f).as_posix() for p in f.rglob("*") if p.is_file()) for f in (a, b)]
    out = [f"files differ: {sorted(set(files[0]) ^ set(files[1]))}"] if files[0] != files[1] else []
    out += [f"{name} differs" for name in ("metrics.csv", "quality.csv") if rows(a, name) != rows(b, name)]
    summaries = [without_clocks(json.loads((f / "summary.json").read_text())) for f in (a, b)]
    if summaries[0] != summaries[1]:
        out.append("summary.json differs")
    last = [torch.load(f / "checkpoints" / "last.pt", weights_only=True) for f in (a, b)]
    if sorted(last[0]) != sorted(last[1]):
        out.append(f"checkpoint keys differ: {sorted(set(last[0]) ^ set(last[1]))}")
    for net in ("generator", "discriminator"):
        if any(not torch.equal(last[0][net][k], last[1][net][k]) for k in last[0][net]):
            out.append(f"{net} weights differ")
    return out


def without_clocks(value):
    if isinstance(value, dict):
        return {k: without_clocks(v) for k, v in value.items() if k not in CLOCKS and not k.endswith("_s")}
    return [without_clocks(v) for v in value] if isinstance(value, list) else value


def tree_differences(a: Path, b: Path) -> list[str]:
    """Every run folder under `a` (itself included) against the one at the same place under `b`."""
    runs = sorted(p.parent.relative_to(a) for p in a.rglob("checkpoints/last.pt"))
    twins = sorted(p.parent.relative_to(b) for p in b.rglob("checkpoints/last.pt"))
    if runs != twins:
        return [f"run folders differ: {sorted(set(map(str, runs)) ^ set(map(str, twins)))}"]
    return [f"{r}: {d}" for r in (r.parent for r in runs) for d in differences(a / r, b / r)]


if __name__ == "__main__":
    found = tree_differences(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(found) or "the same files, rows and weights")
    sys.exit(1 if found else 0)
