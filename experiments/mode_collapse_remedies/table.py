"""The last evaluation's scores of every arm of the remedies study, mean +- standard error over seeds:
python experiments/mode_collapse_remedies/table.py [outputs/studies/mode_collapse_remedies]"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

SCORES = {"ring8": ("modes_covered", "hq_share", "mode_kl", "swd"), "grid25": ("modes_covered", "hq_share", "mode_kl", "swd"),
          "fashion_mnist": ("fd_classifier", "recall", "coverage", "classes_covered")}


def last_row(job: Path) -> dict[str, float]:
    with open(job / "quality.csv") as f:
        return {k: float(v) for k, v in list(csv.DictReader(f))[-1].items() if v}


def main(root: Path) -> None:
    for data, scores in SCORES.items():
        arms = sorted(p for p in (root / data).glob("*") if p.is_dir() and p.name != "compare")
        if not arms:
            continue
        print(f"\n{data} (last evaluation; mean +- standard error over seeds)\n")
        print("| arm | seeds | " + " | ".join(scores) + " |\n|---|---|" + "---|" * len(scores))
        for arm in arms:
            rows = [last_row(job) for job in sorted(arm.glob("*")) if (job / "quality.csv").exists()]
            cells = []
            for score in scores:
                values = [r[score] for r in rows]
                se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
                cells.append(f"{statistics.fmean(values):.3g} +- {se:.2g}")
            print(f"| {arm.name} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/studies/mode_collapse_remedies"))
