"""The seed notes' questions on Fashion-MNIST, each a `ganlab study` of one change against its base, and the
table of their answers in experiments/README.md, built from the studies' own records.

    python experiments/fashion_questions.py run [NAME...]   # run (or continue) the studies, in this order
    python experiments/fashion_questions.py table           # rebuild README.md's table from the studies

Every study: `data=fashion_mnist preset=cpu` (the classic DCGAN in bf16 where the CPU has it, all 60,000
images, 2,000-sample evaluations after each epoch), the calibrated sequential test (ganlab study: rounds of
2 seeds, alpha spent over the looks), MIN_EFFECT for every row, and a budget per question (seeds per value,
minutes of wall time). Each study lives in outputs/studies/fashion/<name> and continues where it stopped;
a question whose budget is spent says so in the table, with the command that continues it (a larger
--max-minutes).

The studies' records (study.json and each finished run's summary, scores, config and log: no checkpoints,
images or loss logs) are kept in git under experiments/fashion_studies/, copied there after each study and by
`table`, so that the table is rebuilt and the studies continue on a machine whose outputs/ is new: `run`
puts a kept record back where outputs/ lacks it, and the study trains its next seeds (the runs of a round
that stopped half-way train again, seed for seed)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ganlab.judging.study import DONE, Study, StudyError
from ganlab.judging.study_table import COLUMNS, processors, study_rows
from ganlab.record.catalog import find_runs

HERE = Path(__file__).resolve().parent
ROOT = Path("outputs/studies/fashion")
KEPT = HERE / "fashion_studies"  # the studies' records, in git (keep, restore)
LEFT_OUT = ("checkpoints", "samples", "tensorboard", "mlruns",  # what a record does without: the table reads
            "metrics.csv", ".pt", ".png")  # summary.json, quality.csv and the config
COMMON = ("data=fashion_mnist", "preset=cpu")
MIN_EFFECT = 0.5  # of fd_classifier: Fashion-MNIST's floor (real against real) is 0.14
BEGIN, END = "<!-- fashion_questions table: begin -->", "<!-- fashion_questions table: end -->"


@dataclass
class Question:
    name: str  # its study folder under ROOT
    overrides: tuple[str, ...]  # the base is the first value swept
    max_seeds: int = 10
    max_minutes: float = 45
    what: str = ""  # the row's label in the README
    readme: str = ""  # the folder of experiments/ whose README tells of this change (default: name)

    def __post_init__(self) -> None:
        self.readme = self.readme or self.name

    def command(self) -> list[str]:
        return ["ganlab", "study", *COMMON, *self.overrides, "--max-seeds", str(self.max_seeds), "--min-effect",
                str(MIN_EFFECT), "--max-minutes", f"{self.max_minutes:g}", "--dir", str(ROOT / self.name),
                "--reuse", str(ROOT)]  # a base another question trained (baseline at 4 epochs, ...) is copied in


# In the order they run: the changes with large effects (cheap to settle), the three questions re-asked
# before (issue 20), then the rest; the 10-epoch questions ask whether a change that learns slower ends level.
# Each study is one change against its base (two values), so that each settles on its own; questions that
# share a base share its runs through --reuse: +exp=baseline at 4 epochs for five, +exp=reference (preset=cpu
# unchanged) for R1, EMA and WGAN-GP.
QUESTIONS = [
    Question("kernel4", ("+exp=baseline,kernel4", "trainer.epochs=4"), what="4x4 kernels (baseline), 4 epochs"),
    Question("d_dropout", ("+exp=baseline,d_dropout", "trainer.epochs=4"),
             what="dropout 0.5 in D (baseline), 4 epochs"),
    Question("projection", ("+exp=conditional", "discriminator.conditioning=none,projection"), readme="conditional",
             what="projection D (unconditional D), cBN G, 3 epochs"),
    Question("acgan", ("+exp=conditional", "discriminator.conditioning=none,acgan"), readme="conditional",
             what="ACGAN D (unconditional D), cBN G, 3 epochs"),
    Question("label_smoothing_0.8", ("+exp=label_smoothing", "loss.real_target=1.0,0.8"), readme="label_smoothing",
             max_minutes=70,  # 45 held 6 of its 10 seeds (rounds of 12 min on the AMD EPYC)
             what="label smoothing 0.8, the notes' (1.0), 3 epochs"),
    Question("label_smoothing_0.9", ("+exp=label_smoothing", "loss.real_target=1.0,0.9"), readme="label_smoothing",
             what="label smoothing 0.9 (1.0), 3 epochs"),
    Question("ttur", ("+exp=logits", "optim.lr=2e-4", "optim.d_lr_mult=1,0.5"), what="TTUR: D lr x0.5 at lr 2e-4 "
             "(x1, on logits), 3 epochs"),
    Question("r1", ("+exp=reference,r1",), max_minutes=55,  # 45 held 8 of its 10 seeds (the test's looks: by seeds)
             what="R1, gamma 1, lazy every 16 D steps (none), 3 epochs"),
    Question("bf16", ("trainer.precision=32,bf16",), readme="precision_bf16", what="bf16 autocast (float32), 3 epochs"),
    Question("ema", ("+exp=reference,ema",), what="EMA, decay 0.99 (none), 3 epochs"),
    Question("deeper_generator", ("+exp=baseline,deeper_generator", "trainer.epochs=4"),
             what="one more conv block a resolution in G (baseline), 4 epochs"),
    Question("logits", ("+exp=baseline,logits", "trainer.epochs=4"), what="BCE on logits, LeakyReLU in D (baseline), "
             "4 epochs"),
    Question("two_sided_smoothing", ("+exp=logits,two_sided_smoothing", "trainer.epochs=4"),
             what="targets 0.98 / 0.02 (logits), 4 epochs"),
    Question("gelu_discriminator", ("+exp=baseline,gelu_discriminator", "trainer.epochs=4"),
             what="GELU in D (baseline), 4 epochs"),
    Question("wgan_gp_epochs", ("+exp=reference,wgan_gp",), readme="wgan_gp",
             what="WGAN-GP at equal epochs (none), 3 epochs"),
    Question("diffaug", ("+exp=diffaug", "data.limit=2000", "trainer.epochs=90", "metrics.every=10",
                         "augment=none,diffaug"), max_minutes=90, what="DiffAugment (none) on 2,000 images, 90 epochs"),
    Question("ada", ("+exp=diffaug", "data.limit=2000", "trainer.epochs=90", "metrics.every=10", "augment=none,ada"),
             max_minutes=90, readme="diffaug", what="ADA (none) on 2,000 images, 90 epochs"),
    Question("label_smoothing_0.8_10", ("+exp=label_smoothing", "loss.real_target=1.0,0.8", "trainer.epochs=10"),
             max_minutes=120, readme="label_smoothing", what="label smoothing 0.8 (1.0), 10 epochs"),
    Question("ttur_10", ("+exp=logits", "optim.lr=2e-4", "optim.d_lr_mult=1,0.5", "trainer.epochs=10"),
             max_minutes=120, readme="ttur", what="TTUR (x1), 10 epochs"),
    Question("ema_10", ("+exp=reference,ema", "trainer.epochs=10"), max_minutes=120,
             readme="ema", what="EMA 0.99 (none), 10 epochs"),
    Question("resnet", ("+exp=reference,resnet_equal_time",), max_minutes=60, what="ResNet width 32 at the DCGAN's "
             "wall time (none): 694 G steps against 2,811"),
    Question("wgan_gp_steps", ("+exp=reference,wgan_gp", "trainer.steps=2811"), max_minutes=120,
             readme="wgan_gp", what="WGAN-GP at equal G steps (none): 2,811, the 3 epochs of the base"),
]


def run(names: list[str]) -> int:
    unknown = set(names) - {q.name for q in QUESTIONS}
    if unknown:
        print(f"no question named {', '.join(sorted(unknown))}; the questions: {', '.join(q.name for q in QUESTIONS)}",
              file=sys.stderr)
        return 2
    ROOT.mkdir(parents=True, exist_ok=True)  # --reuse wants a folder
    for q in QUESTIONS:  # every kept record first: a question's --reuse may take another's base runs
        restore(q.name)
    failed = []
    for q in QUESTIONS:
        if not names or q.name in names:
            print(f"\n== {q.name}: {' '.join(q.command())}", flush=True)
            if subprocess.call(q.command()) != 0:
                failed.append(q.name)  # said in its own output; the next question goes on
            keep(q.name)
    if failed:
        print(f"\nthese studies stopped with an error: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def keep(name: str) -> None:
    """Copy study `name`'s records from outputs/ into KEPT (replacing the last copy): study.json and the
    finished runs' small files. Runs still training are left out: restored, they train again."""
    study = ROOT / name
    if not (study / "study.json").is_file():
        return
    kept, tmp = KEPT / name, KEPT / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for path in [study / "study.json", *study.glob("seeds_*/multirun.yaml")]:
        _copy(path, tmp / path.relative_to(study))
    for run in find_runs(study):
        if run.status in DONE:
            for path in run.path.rglob("*"):
                inside = path.relative_to(run.path)
                if path.is_file() and not {*inside.parts, path.suffix} & set(LEFT_OUT) and \
                        not path.name.startswith(".ganlab"):
                    _copy(path, tmp / run.path.relative_to(study) / inside)
    shutil.rmtree(kept, ignore_errors=True)
    tmp.rename(kept)


def restore(name: str) -> None:
    """Put study `name`'s kept record where outputs/ lacks the study (a new machine)."""
    if (KEPT / name).is_dir() and not (ROOT / name).exists():
        shutil.copytree(KEPT / name, ROOT / name)
        print(f"{ROOT / name}: restored from {KEPT / name} (its records; runs left unfinished there train again)")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def table() -> str:
    """The README's table: each question's rows from its study (ganlab study --table's), or why it has none."""
    lines = ["| question | " + " | ".join(COLUMNS[1:]) + " | budget |", "|" + " --- |" * (len(COLUMNS) + 1)]
    for q in QUESTIONS:
        label, budget = f"[{q.name}]({q.readme}/) {q.what}", f"{q.max_seeds} seeds, {q.max_minutes:g} min"
        try:
            rows = study_rows(ROOT / q.name)
        except (StudyError, ValueError) as e:  # not started, or not looked at yet: the row says so
            why = "not started" if not (ROOT / q.name).exists() else \
                "started, no look yet" if isinstance(e, ValueError) else str(e).split(";")[0]
            lines.append(f"| {label} | {why}: `{' '.join(q.command())}` | | | | | {budget} |")
            continue
        for row in rows:
            question, *cells = row.cells(link=False)
            lines.append(f"| {label}: {question} | {' | '.join(cells)} | {budget} |")
    return "\n".join(lines) + "\n"


def study_block(q: Question) -> str:
    """What a study README says of its question: the command, budget, where it stopped, and its rows."""
    study, rows = Study.load(ROOT / q.name), study_rows(ROOT / q.name)
    look = study.looks[-1]
    return "\n".join([
        f"## Asked as a study (issue 34): {q.what}", "",
        "```bash", " ".join(q.command()), "```", "",
        f"Budget {q.max_seeds} seeds per value and {q.max_minutes:g} min; {look.seeds} seeds per value (seeds "
        f"{study.design.first_seed}-{study.design.first_seed + look.seeds - 1}), "
        f"{study.minutes:.1f} min of wall time on {processors(study) or 'a processor it did not record'}; "
        + (f"stopped: {study.stopped}." if study.stopped else "not stopped yet."),
        "Built from the study's records by `python experiments/fashion_questions.py table` (experiments/README.md "
        "says how to read it). The results after this section are earlier measurements, with the verdicts of "
        "their day.", "",
        "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS),
        *("| " + " | ".join(row.cells(link=False)) + " |" for row in rows)]) + "\n"


def between(text: str, begin: str, end: str, block: str) -> str:
    """`text` with what lies between its `begin` and `end` lines replaced by `block`; when absent, both go before
    its "## Results" (the answer first, the earlier measurements after it), or at the end."""
    if begin not in text:
        head, results, tail = text.partition("\n## Results")
        if not results:
            return f"{text.rstrip()}\n\n{begin}\n{block}{end}\n"
        return f"{head.rstrip()}\n\n{begin}\n{block}{end}\n\n## Results{tail}"
    head, _, rest = text.partition(begin)
    return f"{head}{begin}\n{block}{end}{rest.partition(end)[2]}"


def write_tables() -> None:
    for q in QUESTIONS:  # outputs/ holds the newest records; a new machine's has none, and KEPT holds them
        keep(q.name)
        restore(q.name)
    readme, rows = HERE / "README.md", table()
    readme.write_text(between(readme.read_text(), BEGIN, END, rows))
    for q in QUESTIONS:
        own, begin, end = HERE / q.readme / "README.md", f"<!-- study {q.name}: begin -->", f"<!-- study {q.name}: end -->"
        try:
            own.write_text(between(own.read_text(), begin, end, study_block(q)))
        except (StudyError, ValueError):  # no record behind it (not started, or lost with a machine): no block
            own.write_text(dropped(own.read_text(), begin, end))
    print(rows, end="")


def dropped(text: str, begin: str, end: str) -> str:
    """`text` without the block from its `begin` line to its `end` line (unchanged when it has none)."""
    if begin not in text:
        return text
    head, _, rest = text.partition(begin)
    return f"{head.rstrip()}\n\n{rest.partition(end)[2].lstrip()}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("run", "table"))
    parser.add_argument("names", nargs="*", help="the questions to run (default: all, in order)")
    args = parser.parse_args()
    sys.exit(run(args.names) if args.what == "run" else write_tables() or 0)
