"""The `ganlab` command: `train` (cli/train_command.py; the Hydra app: training/launch.py) and the subcommands in COMMANDS below,
each an arguments function and a run function."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ganlab.config import ConfigError
from ganlab.parts.data import DatasetError, DatasetNotFoundError
from ganlab.quality.scores import better
from ganlab.record.checkpoints import CheckpointError
from ganlab.record.run_folder import EVALUATED, RunFolderError, check_user_output, eval_json, is_run

# Errors of the commands that read a run: one line, no traceback.
READ_ERRORS = (CheckpointError, ConfigError, DatasetError, DatasetNotFoundError, RunFolderError, ValueError, OSError)

ABOUT = "Run, measure and compare GAN experiments composed from Hydra configs."
TRAIN_LINE = ("train a GAN: ganlab train [group=option ...] [key=value ...] [+exp=NAME] [-m]\n"
              "(ganlab train --help lists the config groups and every setting)")
EXAMPLES = """examples:
  ganlab train                                  DCGAN on the bundled 8x8 digits (30-45 s on 2 cores)
  ganlab train loss=wgan_gp discriminator.norm=layer
  ganlab train data=ring8 generator=mlp discriminator=mlp
  ganlab train -m optim.lr=1e-4,2e-4 seed=1,2,3
  ganlab train -m '+exp=glob(*)'               every study of the seed notes, in parallel
"""


@dataclass(frozen=True)
class Command:
    """A subcommand: `run(args)` returns the exit status; `arguments(parser)` declares what it takes."""
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None]
    help: str  # one line, in `ganlab --help`
    description: str = ""  # `ganlab COMMAND --help`
    intermixed: bool = False  # overrides and options in any order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganlab", add_help=False)
    commands = parser.add_subparsers(dest="command")
    for name, command in COMMANDS.items():
        command.arguments(commands.add_parser(name, help=command.help, description=command.description or None))
    return parser


def usage() -> str:
    """`ganlab --help`: every subcommand's line and usage, from the parser itself."""
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["usage: ganlab COMMAND [ARGS]", "", ABOUT, "", "commands:"]
    lines += [f"  {'train':<9} {line}" if i == 0 else f"  {'':<9} {line}" for i, line in enumerate(TRAIN_LINE.splitlines())]
    for name, command in COMMANDS.items():
        synopsis = " ".join(subparsers.choices[name].format_usage().split()[1:])
        lines.append(f"  {name:<9} {command.help}")
        lines += textwrap.wrap(synopsis, 110, initial_indent=" " * 12, subsequent_indent=" " * 14)
    lines += ["  (ganlab COMMAND --help for each)", "", EXAMPLES]
    return "\n".join(lines)



def importable_here() -> None:
    """The current folder is importable, as for `python script.py` (a user's `_target_: mynets.MyG`), in
    this process and in every process it starts (sweep workers, submitit jobs)."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([here, *paths])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    importable_here()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":  # the Hydra app, with ganlab's checks and messages around it
        from ganlab.cli.train_command import train_command

        return train_command(rest)
    if command not in COMMANDS:
        print(f"ganlab: error: unknown command {command!r}; choose one of: train, {', '.join(COMMANDS)} "
              f"(ganlab --help)", file=sys.stderr)
        return 2
    spec = COMMANDS[command]
    if spec.intermixed:  # its overrides and options may come in any order
        parser = argparse.ArgumentParser(prog=f"ganlab {command}", description=spec.description)
        spec.arguments(parser)
        args = argparse.Namespace(**vars(parser.parse_intermixed_args(rest)), command=command)
    else:
        args = build_parser().parse_args(argv)
    try:
        return spec.run(args)
    except READ_ERRORS as e:
        print(f"ganlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ganlab: interrupted; continue with: ganlab resume {getattr(args, 'run_dir', '')}", file=sys.stderr)
        return 130


def sample_arguments(sample: argparse.ArgumentParser) -> None:
    sample.add_argument("run_dir", type=Path, help="a run folder (outputs/runs/...)")
    sample.add_argument("--n", type=int, default=64, help="how many samples (default 64)")
    sample.add_argument("--out", type=Path, required=True, help="FILE.png or FILE.npz (a new file)")
    sample.add_argument("--force", action="store_true", help="replace --out if it exists")
    sample.add_argument("--checkpoint", choices=EVALUATED, default="best", help="default: best")
    sample.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    sample.add_argument("--class", dest="choice", metavar="K",
                        help="a conditional run: draw class K (its index or name), or all (one row per class, the "
                             "default)")
    sample.add_argument("--interpolate", type=int, nargs="?", const=8, metavar="STEPS",
                        help="rows of STEPS images (default 8) between random latents, spherically: N // STEPS rows")
    sample.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                        help="scale the latents towards their mean: 1 (default) is plain sampling, smaller gives "
                             "more typical, less varied samples; the same --seed keeps each image's place")


def sample_command(args: argparse.Namespace) -> int:
    from ganlab.judging.sampling import write_samples

    if args.n < 1:
        raise ValueError(f"--n {args.n}: ask for at least one sample")
    check_user_output(args.out, args.force)
    out = write_samples(args.run_dir, args.out, args.n, args.checkpoint, args.seed, args.interpolate,
                        args.truncation, args.choice)
    print(f"wrote {args.n} samples of {args.run_dir} ({args.checkpoint}.pt, seed {args.seed}) to {out}")
    return 0


def eval_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("path", type=Path, help="a run folder (outputs/runs/...), or samples made by any tool: a "
                                                  "folder of images or an .npz (give data=NAME)")
    evaluate.add_argument("overrides", nargs="*", help="for samples: data=NAME (whose yardstick scores them) and "
                                                       "metrics.* (e.g. metrics.inception_weights=PATH)")
    evaluate.add_argument("--checkpoint", choices=EVALUATED, default="best", help="a run's checkpoint (default: best)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the noise, or of the samples drawn (default 0)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")


def eval_command(args: argparse.Namespace) -> int:
    if is_run(args.path):
        from ganlab.judging.rescoring import evaluate_checkpoint

        if args.overrides:
            raise ValueError(f"{args.path} is a run: its config says what it is scored against; drop "
                             f"{' '.join(args.overrides)}")
        result = evaluate_checkpoint(args.path, args.checkpoint, args.seed)
        heading = f"{result['checkpoint']} (epoch {result['epoch']}, step {result['step']})"
    else:
        from ganlab.config import compose_train
        from ganlab.judging.outside_samples import evaluate_samples
        from ganlab.parts.registry import DATASETS

        if not any(o.startswith("data=") for o in args.overrides):
            raise ValueError(f"{args.path}: name the dataset whose yardstick scores these samples, e.g. "
                             f"ganlab eval {args.path} data=fashion_mnist")
        cfg = compose_train(*args.overrides)
        DATASETS.validate(cfg.data)
        result = evaluate_samples(args.path, cfg, args.seed)
        heading = f"{result['n']} samples of {args.path}, against data={cfg.data.name}"
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print_scores(result, heading, "these" if "samples" in result else "this run")
    if "samples" not in result:
        print(Path(args.path) / eval_json(args.checkpoint))
    return 0


def print_scores(result: dict, heading: str, column: str) -> None:
    print(f"{heading}; {better(result['metric'])}\n")
    width = max(len(k) for k in result["scores"])
    print(f"{'score':<{width}}  {column:>10}  {'+- se':>8}  {'real vs real':>12}")
    for key, value in result["scores"].items():
        print(f"{key:<{width}}  {value:>10.4g}  {result['noise'].get(key, float('nan')):>8.2g}  "
              f"{result['floor'].get(key, float('nan')):>12.4g}")
    floor = result["at_the_floor"]
    print("\nat the floor (every score within 2 se of real vs real)" if not floor["not"] else
          f"\nnot at the floor: {', '.join(floor['not'])} differ from real vs real beyond 2 se"
          + (f"; within noise of it: {', '.join(floor['at'])}" if floor["at"] else ""))
    info = result["scored_with"]
    print(f"\nscored in the {info['feature_space']}" + (f" (hash {info['hash']}, test accuracy {info['test_accuracy']})"
                                                        if "hash" in info else ""))


def sweep_arguments(sweep: argparse.ArgumentParser) -> None:
    sweep.add_argument("sweep_dir", type=Path, help="a sweep folder (outputs/sweeps/...)")
    sweep.add_argument("--resume", action="store_true", help="complete an interrupted sweep in place: resume its "
                                                             "stopped jobs and train the ones it never started")


def sweep_command(args: argparse.Namespace) -> int:
    from ganlab.record.sweep_plan import job_folders
    from ganlab.record.sweep_table import failed_jobs, format_table, write_sweep_table
    from ganlab.training.sweep import resume_sweep

    sweep_dir = args.sweep_dir
    if not sweep_dir.is_dir() or not job_folders(sweep_dir):
        raise ValueError(f"{sweep_dir} holds no sweep jobs (folders with .hydra/); give a folder under outputs/sweeps/")
    if args.resume:
        try:
            resume_sweep(sweep_dir)
        except KeyboardInterrupt:
            print(f"ganlab: interrupted; continue with: ganlab sweep {sweep_dir} --resume", file=sys.stderr)
            return 130
    rows = write_sweep_table(sweep_dir)
    print(format_table(rows))
    waiting = [r for r in rows if r["status"] in ("stopped", "interrupted", "not started")]
    print(f"\n{len(rows)} jobs, {len(failed_jobs(rows))} not completed; table: {sweep_dir / 'sweep.csv'}"
          + (f"\n{len(waiting)} stopped or not started: complete them with ganlab sweep {sweep_dir} --resume"
             if waiting else ""))
    return 0 if not args.resume or not failed_jobs(rows) else 1


def runs_arguments(runs: argparse.ArgumentParser) -> None:
    runs.add_argument("dir", type=Path, nargs="?", default=Path("outputs"), help="default: outputs")
    runs.add_argument("--status", help="only runs with this status (completed, failed, diverged, ...)")
    runs.add_argument("--grep", help="only runs whose overrides or name contain this text")
    runs.add_argument("--json", action="store_true", help="print JSON rows for scripts")


def runs_command(args: argparse.Namespace) -> int:
    import json

    from ganlab.record.catalog import find_runs
    from ganlab.record.sweep_table import format_table

    if not args.dir.is_dir():
        raise ValueError(f"{args.dir} is not a folder; give the outputs folder or a sweep folder")
    rows = [r.row() for r in find_runs(args.dir)]
    if args.status:
        rows = [r for r in rows if r["status"] == args.status]
    if args.grep:
        rows = [r for r in rows if args.grep in r["overrides"] or args.grep in str(r["name"])]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    common = set.intersection(*(set(r["overrides"].split()) for r in rows)) if len(rows) > 1 else set()
    for row in rows:  # the overrides that tell the listed runs apart, whole; the shared ones said once below
        row["overrides"] = " ".join(o for o in row["overrides"].split() if o not in common)
        row["started"] = str(row["started"])[:19].replace("T", " ")
    print(format_table(rows, ["started", "name", "sweep", "overrides", "status", "epochs", "duration_s", "metric",
                              "best_score", "best_epoch"]))
    print(f"\n{len(rows)} runs under {args.dir}" + (f"; every one with {' '.join(sorted(common))}" if common else ""))
    return 0


def compare_arguments(comp: argparse.ArgumentParser) -> None:
    comp.add_argument("paths", type=Path, nargs="+", help="a sweep folder, or several run folders")
    comp.add_argument("--json", action="store_true", help="print the comparison as JSON (no figures)")
    comp.add_argument("--out", type=Path, help="folder for the figures (default: SWEEP/compare or "
                                               "outputs/compare/<date>_<time>); refused if it holds compare's files")
    comp.add_argument("--force", action="store_true", help="replace compare's files in --out if they exist")
    comp.add_argument("--at-common-step", action="store_true",
                      help="score every run, unfinished ones too, by its best up to the last evaluation all of them "
                           "reached (default: runs stopped before their planned steps are left out)")


def compare_command(args: argparse.Namespace) -> int:
    from datetime import datetime

    from ganlab.judging.compare import compare
    from ganlab.judging.figures import FILES, write_figures
    from ganlab.judging.verdict import format_comparison
    from ganlab.record.catalog import find_runs, is_study, is_sweep

    missing = [p for p in args.paths if not p.is_dir()]
    if missing:
        raise ValueError(f"{missing[0]} is not a folder; give a sweep folder or run folders")
    if args.out and not args.json:
        if args.out.exists() and not args.out.is_dir():
            raise RunFolderError(f"--out {args.out} is a file; compare writes a folder of figures. Name a new folder")
        for name in FILES:
            check_user_output(args.out / name, args.force)
    runs = [run for path in args.paths for run in find_runs(path)]
    if len(runs) < 2:
        raise ValueError(f"found {len(runs)} run under {', '.join(map(str, args.paths))}; compare needs two or more")
    study = len(args.paths) == 1 and is_study(args.paths[0])
    out = args.out or (args.paths[0] / "compare" if len(args.paths) == 1 and (is_sweep(args.paths[0]) or study)
                       else Path("outputs") / "compare" / f"{datetime.now():%Y-%m-%d_%H-%M-%S}")
    comparison = compare(runs, at_common_step=args.at_common_step)
    if study:
        comparison.warnings.append(f"note: {args.paths[0]} is a study run until settled; its answers, tested at each "
                                   f"look's level, are in study.json (ganlab study --dir {args.paths[0]} prints them). "
                                   f"This one-look comparison does not account for the looks.")
    if args.json:
        import json

        print(json.dumps(comparison.as_json(), indent=2, default=str))
        return 0
    text = format_comparison(comparison)
    figures = write_figures(comparison, out)
    (out / "compare.txt").write_text(text + "\n")
    print(text)
    print("\nfigures: " + ", ".join(str(f) for f in figures))
    return 0


def resume_arguments(resume: argparse.ArgumentParser) -> None:
    resume.add_argument("run_dir", type=Path, help="a run folder (outputs/runs/...)")
    resume.add_argument("overrides", nargs="*", help="e.g. trainer.epochs=200")


def resume_command(args: argparse.Namespace) -> int:
    from ganlab.training.resume import resume_run

    summary = resume_run(args.run_dir, args.overrides)
    print(args.run_dir)
    return 0 if summary["status"] == "completed" else 1


def study_arguments(study: argparse.ArgumentParser) -> None:
    study.add_argument("overrides", nargs="*", help="ganlab train overrides with one or more swept keys")
    study.add_argument("--dir", type=Path, help="the study's folder (default: outputs/studies/<date>_<time>_<name>); "
                                                "one that holds a study is continued")
    study.add_argument("--max-seeds", type=int, default=12, help="seeds per value at most (default 12)")
    study.add_argument("--per-round", type=int, default=2, help="seeds per value added each round (default 2)")
    study.add_argument("--min-effect", type=float, help="a difference of the primary score that an equivalence "
                                                        "test puts below this settles too")
    study.add_argument("--max-minutes", type=float, help="stop starting rounds after this much training time")
    study.add_argument("--first-seed", type=int, default=1, help="the first seed (default 1)")
    study.add_argument("--reuse", nargs="+", default=[], metavar="DIR",
                       help="copy in, instead of training again, the finished runs under these folders (other "
                            "studies, sweeps) that are exactly this study's jobs: same overrides, same config")
    study.add_argument("--table", nargs="+", type=Path, metavar="DIR",
                       help="print one Markdown table of these studies' answers (change vs base) and stop")
    study.add_argument("--config-dir", "-cd", help="a folder of your own config groups, beside ganlab's (as for "
                                                   "ganlab train)")


def reuse_folders(folders: list[str]) -> list[str]:
    missing = [f for f in folders if not Path(f).is_dir()]
    if missing:
        raise ValueError(f"--reuse {missing[0]}: no such folder; give folders that hold runs (studies, sweeps)")
    return [str(Path(f).resolve()) for f in folders]


def study_command(args: argparse.Namespace) -> int:
    from datetime import datetime

    from ganlab.judging.study import Design, Study
    from ganlab.config.hydra_flags import sweep_name
    from ganlab.training.processes import stop_workers_on_signals

    if args.table:
        from ganlab.judging.study_table import markdown_table

        print(markdown_table(args.table), end="")
        return 0
    # `--reuse DIR key=a,b`: argparse hands the overrides after --reuse to it; they are overrides
    overrides = [f for f in args.reuse if "=" in f and not Path(f).exists()]
    args.reuse, args.overrides = [f for f in args.reuse if f not in overrides], [*args.overrides, *overrides]
    if not args.overrides:
        if not args.dir:
            raise ValueError("give the overrides to compare (e.g. +exp=baseline,label_smoothing), or --dir DIR to "
                             "continue a study")
        study = Study.resume(args.dir)
        study.design.max_minutes = args.max_minutes or study.design.max_minutes
        study.design.min_effect = args.min_effect or study.design.min_effect
        study.design.reuse = reuse_folders(args.reuse) or study.design.reuse
    else:
        config_dir = str(Path(args.config_dir).resolve()) if args.config_dir else None
        design = Design(list(args.overrides), args.max_seeds, args.per_round, args.min_effect, args.max_minutes,
                        first_seed=args.first_seed, config_dir=config_dir, reuse=reuse_folders(args.reuse))
        folder = args.dir or Path("outputs/studies") / f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{sweep_name(design.overrides)}"
        study = Study.start(folder, design)
    try:
        with stop_workers_on_signals(None):  # SIGTERM too stops the round's sweep before this process ends
            study.run()
    except KeyboardInterrupt:
        print(f"ganlab: study interrupted; its runs are kept. Continue with: ganlab study --dir {study.folder}",
              file=sys.stderr)
        return 130
    return 0


def report_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("path", type=Path, help="a run folder or a sweep folder")
    report.add_argument("--out", type=Path, help="the HTML file (default: PATH/report.html); a new file")
    report.add_argument("--force", action="store_true", help="replace --out if it exists")


def report_command(args: argparse.Namespace) -> int:
    from ganlab.judging.report import write_report

    if args.out:
        check_user_output(args.out, args.force)
    print(write_report(args.path, args.out))
    return 0


COMMANDS = {  # `ganlab train` is the Hydra app (training/launch.py); these are the others, in `ganlab --help` order
    "runs": Command(runs_command, runs_arguments, "list the runs and sweeps under outputs/ (or DIR), newest first",
                    "List the runs (and sweep jobs) under DIR, newest first."),
    "compare": Command(compare_command, compare_arguments, "which change helped, over a sweep or several runs",
                       "Compare each swept key's values within cells that share every other swept setting and the "
                       "seed (paired): median difference, interval, p-value, verdict in words; curves, best grids, "
                       "a heat map for two keys."),
    "study": Command(study_command, study_arguments, "compare values in rounds of seeds until the answer is settled",
                     "Train the swept values (e.g. +exp=baseline,label_smoothing) on rounds of seeds and look after "
                     "each: stop when every value is beyond noise (or ruled out below --min-effect) or a budget is "
                     "spent. Repeated looks spend alpha (the false 'better/worse' rate stays at 5%). Run the same "
                     "command, or ganlab study --dir DIR, to continue an interrupted study.", intermixed=True),
    "report": Command(report_command, report_arguments, "one self-contained HTML page for a run or a sweep",
                      "Write PATH/report.html (or --out): summary, diagnoses, plots, the sample grid of every epoch, "
                      "and for a sweep the comparison."),
    "resume": Command(resume_command, resume_arguments, "continue a run from its last checkpoint, bit for bit",
                      "Continue a run from checkpoints/last.pt: networks, optimisers, counters, RNG states and data "
                      "order, so it ends as if never stopped. Overrides may extend it (trainer.epochs=200) but not "
                      "change it."),
    "sample": Command(sample_command, sample_arguments, "write samples of a trained run (a grid, an .npz, "
                      "interpolations, a class)", "Write N samples of a run's generator as a PNG grid (a plot for "
                      "1-D/2-D data) or an .npz array in data space."),
    "eval": Command(eval_command, eval_arguments, "score a checkpoint, or images made by any tool, beside the "
                    "real-vs-real floor", "Recompute the quality scores of a run's checkpoint, print them beside the "
                    "real-vs-real floor, write RUN_DIR/eval_<checkpoint>.json; or score a folder of images (or an "
                    ".npz) made by any tool against a dataset's yardstick: ganlab eval PATH data=NAME.", intermixed=True),
    "sweep": Command(sweep_command, sweep_arguments, "rebuild a sweep's table; --resume completes an interrupted "
                     "sweep in place", "Rebuild SWEEP_DIR/sweep.csv from the job folders and print it."),
}


if __name__ == "__main__":
    sys.exit(main())
