"""Each Fashion-MNIST change of experiments/README.md over training: learns faster, ends better, or
both, from the per-epoch tables in the study READMEs (fd_classifier after each epoch, seeds 1-3).

    python experiments/over_training_table.py

Each epoch's paired differences (change - base, 3 seeds) go through ganlab's paired test at 5%
(a t-test at 3 pairs; the tables hold no standard errors, so the measurement noise is not added:
at 2,000 samples it is 0.05-0.1, small beside these differences), then over_training's words.
"""

from __future__ import annotations

import re
from pathlib import Path

from ganlab.judging import stats
from ganlab.judging.over_training import AHEAD, BEHIND, LEVEL, Course, describe, kind_of_effect

HERE = Path(__file__).resolve().parent
# (README, base row, change row, what the table calls the change)
CHANGES = [
    ("baseline", "baseline", "kernel4", "kernel4"), ("baseline", "baseline", "d_dropout", "d_dropout"),
    ("baseline", "baseline", "deeper_generator", "deeper_generator"), ("baseline", "baseline", "logits", "logits"),
    ("baseline", "logits", "two_sided_smoothing", "two_sided_smoothing"),
    ("label_smoothing", "1.0", "0.9", "label_smoothing 0.9"), ("label_smoothing", "1.0", "0.8", "label_smoothing 0.8"),
    ("ttur", "x1", "x0.5", "ttur"), ("ema", "none (`preset=cpu`)", "ema", "ema"),
    ("r1", "none (`preset=cpu`)", "r1", "r1"), ("wgan_gp", "none (`preset=cpu`)", "wgan_gp", "wgan_gp"),
    ("diffaug", "none", "diffaug", "diffaug"), ("diffaug", "none", "ada", "ada"),
]


def tables(readme: Path) -> list[tuple[list[int], dict[str, list[list[float]]]]]:
    """Every per-epoch table of a README: its epochs, and per row each seed's scores over them."""
    text, found = readme.read_text(), []
    for part in text.split("fd_classifier after epochs")[1:]:
        heading = part.split(":")[0].split("(")[0]
        rows = {}
        for line in part.splitlines()[1:]:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 4 and " / " in cells[1]:
                rows[cells[0]] = [[float(x) for x in c.split(" / ")] for c in cells[1:4]]
            elif rows and not line.startswith("|"):
                break
        found.append(([int(x) for x in re.findall(r"\d+", heading)], rows))
    return found


def course_of(base: list[list[float]], change: list[list[float]], steps: list[int]) -> Course:
    out = Course()
    for i, step in enumerate(steps):
        diffs = [c[i] - b[i] for b, c in zip(base, change)]
        test = stats.paired_test(diffs, stats.ALPHA)
        mean = sum(diffs) / len(diffs)
        out.steps.append(step)
        out.states.append(LEVEL if not test.significant else AHEAD if mean < 0 else BEHIND)
    return out


def main() -> None:
    print("| change (base) | fd_classifier by epoch: is the change ahead (lower) beyond noise? | in short |")
    print("| --- | --- | --- |")
    for study, base, change, name in CHANGES:
        steps, table = next((e, t) for e, t in tables(HERE / study / "README.md") if base in t and change in t)
        c = course_of(table[base], table[change], steps)
        words = describe(c.steps, c.states, "it", "the base", unit="epoch")
        print(f"| {name} ({base}) | {' / '.join(c.states)} ({words}) | {kind_of_effect(c)} |")


if __name__ == "__main__":
    main()
