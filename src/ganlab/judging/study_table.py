"""`ganlab study --table DIR...`: one Markdown table of what studies found, built from their own records.

Each row is one of a study's answers at its last look (study.json: the calibrated sequential test's words),
turned to read "change vs base", the base being the first value the study's overrides list; its numbers
are compare's at that look (the runs of the looked-at seeds, at the look's level): the median paired
difference (change - base; negative is better) with its 95% interval, the seeds per value, the study's
wall time, and the course over training (learns faster / ends better). An open answer says where it
stands and the command that continues it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ganlab.judging.compare import compare
from ganlab.judging.study import DONE, OPEN, Study
from ganlab.record.sweep_plan import swept_overrides

COLUMNS = ("question", "answer", "change - base [95% interval]", "seeds per value", "wall time", "over training")
NO_COURSE = "no evaluation at a step both reached"  # e.g. WGAN-GP's epochs are fewer G steps
OPPOSITE = {"better": "worse", "worse": "better", "faster": "slower", "slower": "faster"}


@dataclass
class Row:
    study: Path
    question: str  # "key=change vs base"
    answer: str  # better/worse beyond noise | smaller than X | not settled: why
    difference: float  # median paired difference, change - base
    interval: tuple[float, float]
    seeds: int
    minutes: float
    course: str  # learns faster / ends better / ... (over_training.kind_of_effect), change against base
    processor: str = ""  # where the study's wall time was spent (its looks' machines, in order)

    def cells(self, link: bool) -> list[str]:
        name = f"[{self.study.name}]({self.study.as_posix()}): " if link else ""
        low, high = self.interval
        where = f" on {self.processor}" if self.processor else ""
        return [name + self.question, self.answer, f"{self.difference:+.3g} [{low:+.3g}, {high:+.3g}]",
                str(self.seeds), f"{self.minutes:.0f} min{where}", self.course]


def study_rows(folder: Path) -> list[Row]:
    """The rows of one study: one per answer of its last look."""
    study = Study.load(folder)
    if not study.looks:
        raise ValueError(f"{folder}: the study has not looked yet (fewer than 2 seeds per value finished); "
                         f"continue it with: ganlab study --dir {folder}")
    look = study.looks[-1]
    seeds = set(study.design.seeds(0, look.seeds))
    runs = [r for (_, seed), r in study.placed(study.runs()).items() if r.status in DONE and seed in seeds]
    comparison = compare(runs, alpha=look.level)
    bases = _bases(study.design.overrides)
    rows = []
    for key, factor in comparison.factors.items():
        best = factor.values[0].value
        base = ", ".join(bases.get(k, "(default)") for k in key.split(" + "))
        for e in factor.effects:
            answer, difference, interval, course = look.answers.get(f"{key}={e.value} vs {best}", OPEN), \
                e.median_diff, e.interval, e.kind or NO_COURSE
            if e.value == base:  # the change was best: the study's answer about the base, turned round
                question, answer, difference, interval, course = f"{key}={best} vs {base}", _turned(answer), \
                    -difference, (-interval[1], -interval[0]), _turned(course)
            else:  # "change vs base" as the study asked it, or with three values or more, against the best
                question = f"{key}={e.value} vs {best}"
            rows.append(Row(folder, question, _words(answer, study), difference, interval, look.seeds, study.minutes,
                            course, processors(study)))
    return rows


def processors(study: Study) -> str:
    """The machines a study's rounds ran on, in order: "A", or "A, then B" for a study continued elsewhere."""
    return ", then ".join(dict.fromkeys(look.processor for look in study.looks if look.processor))


def markdown_table(folders: list[Path], link: bool = True) -> str:
    """The rows of every study in `folders`, as one Markdown table."""
    rows = [row for folder in folders for row in study_rows(folder)]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.cells(link)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _bases(overrides: list[str]) -> dict[str, str]:
    """Each swept key's first value: the base its other values are changes of."""
    return {key: values[0] for key, _, values in swept_overrides(overrides)}


def _turned(words: str) -> str:
    """The same statement about the other value ("worse" for "better", "learns faster" for "slower")."""
    return " ".join(OPPOSITE.get(w, w) for w in words.split(" "))


def _words(answer: str, study: Study) -> str:
    if answer != OPEN:
        return answer
    if not study.stopped:  # running now, or stopped by a signal before it could say why
        return f"not settled yet (at its last look; `ganlab study --dir {study.folder}` goes on if it is not running)"
    return f"not settled: {study.stopped}{how_to_go_on(study)}"


def how_to_go_on(study: Study) -> str:
    """How a study stopped by a budget goes on: more minutes continue it; more seeds are a new design (its
    looks' levels depend on the seed budget), which takes this study's runs as its first seeds."""
    if "time budget" in study.stopped:
        return f"; continue: `ganlab study --dir {study.folder} --max-minutes M`"
    if "seed budget" in study.stopped:
        seeds = 2 * study.design.max_seeds
        design = replace(study.design, max_seeds=seeds, reuse=[str(study.folder)])  # the same time budget
        return f"; more seeds are a new study (its looks spend a new 5%): " \
               f"`{design.command(Path(f'{study.folder}_{seeds}_seeds'))}`"
    return ""
