"""`ganlab study`: a comparison run in rounds of seeds until every verdict is settled.

Each round trains every swept setting on the next seeds (one Hydra sweep folder per round, in
parallel like any sweep), then looks: compare at the level that the round's share of the seed budget
spends (stats.look_level), so that all the looks together keep the false "better/worse" rate at
alpha. A value is settled when it is beyond noise, or (given --min-effect) when its pairs rule out a
difference that large (an equivalence test at the look's level); a settled answer stays settled. The
study stops when every answer is settled or a budget (seeds, minutes) is spent. study.json holds the
design and every look; the same command continues an interrupted study, reusing every run already
made."""

from __future__ import annotations

import hashlib
import json
import math
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ganlab.config.schema import HOW_NOT_WHAT
from ganlab.judging import stats
from ganlab.record.catalog import STUDY_STATE, RunRecord, find_runs
from ganlab.record.run_folder import STUDY_LOCK, RunFolderError, atomic_write, claim_existing
from ganlab.record.sweep_plan import setting_and_seed, swept_overrides, swept_settings
from ganlab.training.processes import OutOfTime, run_worker
from ganlab.training.sweep import forget_unstarted_sweep, resume_sweep

STATE = STUDY_STATE
REUSED = "reused"  # the folder of runs copied in from --reuse folders: this study's own from then on
DONE = ("completed", "failed", "diverged")  # a run whose score (or failure) is final
OPEN = "open"
OVERRUN = 1.05  # a round expected to end within 5% past the time budget is started, and stopped there if it runs on


class StudyError(RunFolderError):
    """The study cannot start or go on; the message names the problem and the fix."""


@dataclass
class Design:
    """What a study asks and what it may spend; fixed once it starts (the looks' levels depend on it),
    but for the time budget and the minimum effect."""
    overrides: list[str]  # `ganlab train` overrides; the swept ones (a,b,...) are the question
    max_seeds: int = 12
    per_round: int = 2
    min_effect: Optional[float] = None  # a difference of the primary score smaller than this is an answer too
    max_minutes: Optional[float] = None
    alpha: float = stats.ALPHA
    first_seed: int = 1
    config_dir: Optional[str] = None  # the user's config folder (`--config-dir`), beside ganlab's
    reuse: list[str] = field(default_factory=list)  # folders whose finished runs of this study's jobs are copied in

    def check(self) -> None:
        if not 2 <= self.max_seeds <= 1000:
            raise StudyError(f"--max-seeds {self.max_seeds}: give 2 to 1000 seeds per value")
        if not 1 <= self.per_round <= self.max_seeds:
            raise StudyError(f"--per-round {self.per_round}: give 1 to --max-seeds ({self.max_seeds})")
        if self.min_effect is not None and not self.min_effect > 0:
            raise StudyError(f"--min-effect {self.min_effect}: give a positive difference of the primary score")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise StudyError(f"--max-minutes {self.max_minutes}: give a positive number of minutes")
        if any(o.lstrip("+~").startswith("seed=") for o in self.overrides):
            raise StudyError("a study picks the seeds itself: leave seed= out (--first-seed N starts them elsewhere)")
        if any(o.startswith("hydra.") for o in self.overrides):
            raise StudyError("a study places its runs itself: leave hydra.* settings out (--dir PATH names its folder)")
        if self.config_dir is not None and not Path(self.config_dir).is_dir():
            raise StudyError(f"--config-dir {self.config_dir}: no such folder; give the folder that holds your "
                             f"config groups (e.g. myconf/exp/mine.yaml)")
        if len(swept_settings(self.overrides)) < 2:
            raise StudyError(f"nothing to compare in '{' '.join(self.overrides)}': sweep a key over two or more "
                             f"values, e.g. optim.lr=1e-4,2e-4 or +exp=baseline,label_smoothing")

    def command(self, folder: Path) -> str:
        """The `ganlab study` command that starts this design in `folder`."""
        q = shlex.quote
        flags = [f"--max-seeds {self.max_seeds}", f"--per-round {self.per_round}" if self.per_round != 2 else "",
                 f"--first-seed {self.first_seed}" if self.first_seed != 1 else "",
                 f"--min-effect {self.min_effect:g}" if self.min_effect else "",
                 f"--max-minutes {self.max_minutes:g}" if self.max_minutes else "",
                 f"--config-dir {q(self.config_dir)}" if self.config_dir else "", f"--dir {q(str(folder))}",
                 f"--reuse {' '.join(map(q, self.reuse))}" if self.reuse else ""]
        return " ".join(["ganlab study", *map(q, self.overrides), *filter(None, flags)])

    def seeds(self, done: int, count: int) -> list[int]:
        """The `count` seeds after the first `done` (never past the budget)."""
        return [self.first_seed + i for i in range(done, min(done + count, self.max_seeds))]


@dataclass
class Look:
    seeds: int  # seeds per value so far
    level: float  # the level this look's tests were held to (its share of alpha)
    minutes: float  # the study's wall time so far
    answers: dict[str, str]  # "key=value vs best" -> better/worse beyond noise | smaller than X | open
    text: str = ""  # compare's table at this look
    processor: str = ""  # the machine that looked (cost.processor): the wall times are its


@dataclass
class Study:
    folder: Path
    design: Design
    looks: list[Look] = field(default_factory=list)
    minutes: float = 0.0  # wall time over every session of this study
    stopped: str = ""  # why it stopped, once it has
    round_minutes: float = field(default=0.0, repr=False)  # the last round's (continued: from the looks)

    # ------------------------------------------------------------------ state on disk
    @classmethod
    def start(cls, folder: Path, design: Design) -> "Study":
        """A new study in `folder`, or the one already there (whose design must be the same), held by
        this process until it ends."""
        design.check()
        if not (folder / STATE).is_file() and folder.exists() and any(p.name != STUDY_LOCK for p in folder.iterdir()):
            raise StudyError(f"{folder} is not empty and holds no study ({STATE}); choose a new --dir")
        claim_existing(folder, STUDY_LOCK)
        if (folder / STATE).is_file():
            study = cls.load(folder)
            fixed = ("overrides", "max_seeds", "per_round", "first_seed", "alpha", "config_dir")
            changed = [k for k in fixed if getattr(study.design, k) != getattr(design, k)]
            if changed:
                raise StudyError(f"{folder} holds a study whose {', '.join(changed)} differ from these; a design is "
                                 f"fixed once started. Continue it with: ganlab study --dir {folder}, or choose a "
                                 f"new --dir")
            study.design.max_minutes, study.design.min_effect = design.max_minutes, design.min_effect
            study.design.reuse = design.reuse or study.design.reuse
            return study
        study = cls(folder, design)
        study.save()
        return study

    @classmethod
    def resume(cls, folder: Path) -> "Study":
        """The study in `folder`, to go on with, held by this process until it ends: a second process
        started on it is refused, having written nothing."""
        study = cls.load(folder)
        claim_existing(folder, STUDY_LOCK)
        return study

    @classmethod
    def load(cls, folder: Path) -> "Study":
        """The study recorded in `folder`: its design checked, and its record's seal (a hash written with
        it), so that a design or look edited by hand is refused rather than followed."""
        try:
            state = json.loads((folder / STATE).read_text())
            seal = state.pop("seal", None)
            if seal is not None and seal != _seal(state):
                raise StudyError(f"{folder / STATE} was changed since ganlab wrote it (its seal does not match); a "
                                 f"study's design and looks are fixed, as its tests' levels depend on them: restore "
                                 f"the file, or start a new study with a new --dir (its runs can be copied there)")
            looks = [Look(**look) for look in state.pop("looks")]
            study = cls(folder, Design(**state.pop("design")), looks, **state)
        except FileNotFoundError:
            raise StudyError(f"{folder} holds no study ({STATE}); start one with: ganlab study OVERRIDES --dir "
                             f"{folder}") from None
        except StudyError:
            raise
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            raise StudyError(f"{folder / STATE} cannot be read ({e.__class__.__name__}: {e}); move it away and run "
                             f"the study's command again (its runs are kept and reused)") from None
        try:
            study.design.check()
        except StudyError as e:
            raise StudyError(f"{folder / STATE}: its design cannot run ({e})") from None
        return study

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"design": asdict(self.design), "looks": [asdict(look) for look in self.looks],
                 "minutes": round(self.minutes, 3), "stopped": self.stopped}
        state["seal"] = _seal(state)
        atomic_write(self.folder / STATE, lambda tmp: tmp.write_text(json.dumps(state, indent=2) + "\n"))

    # ------------------------------------------------------------------ runs
    def runs(self) -> list[RunRecord]:
        return [r for r in find_runs(self.folder) if r.path.parent != self.folder]

    def placed(self, runs: list[RunRecord]) -> dict[tuple, RunRecord]:
        """Each run by its (setting, seed): exactly one run of each, a second is an error naming both."""
        keys = {k for k, _ in swept_settings(self.design.overrides)[0]}
        found: dict[tuple, RunRecord] = {}
        for run in runs:
            where = setting_and_seed(run, keys)
            if where in found:
                raise StudyError(f"two runs of one setting and seed, {found[where].path} and {run.path}; a study "
                                 f"counts each once: move one of them out of {self.folder}, then continue with: "
                                 f"ganlab study --dir {self.folder}")
            found[where] = run
        return found

    def seeds_done(self, runs: list[RunRecord]) -> int:
        """How many seeds, from the first, have a finished run (a score or a failure) of every setting."""
        done = {where for where, r in self.placed(runs).items() if r.status in DONE}
        wanted = swept_settings(self.design.overrides)
        seeds = self.design.seeds(0, self.design.max_seeds)
        return next((i for i, seed in enumerate(seeds) if any((s, seed) not in done for s in wanted)), len(seeds))

    # ------------------------------------------------------------------ the loop
    def run(self, say: Callable[[str], None] = print) -> str:
        """Rounds and looks until settled or out of budget; returns why it stopped."""
        d = self.design
        n_settings = len(swept_settings(d.overrides))
        say(f"study {self.folder}: {' '.join(d.overrides)}\n  up to {d.max_seeds} seeds per value in rounds of "
            f"{d.per_round}: at most {math.ceil(d.max_seeds / d.per_round)} rounds of {n_settings * d.per_round} runs "
            f"({n_settings} settings; each run's train.log says its G steps and time left)"
            + (f"; differences below {d.min_effect:g} settle too" if d.min_effect else "")
            + (f"; {d.max_minutes:g} min budget" if d.max_minutes else "")
            + (f"; continuing after {len(self.looks)} looks, {self.minutes:.1f} min" if self.looks else ""))
        self.round_minutes = self.round_minutes or self._round_minutes_from_looks()
        self.stopped = ""  # going on: why it stopped before no longer holds (saved with the first round's time)
        while True:
            runs = self.runs()
            seeds = self.seeds_done(runs)
            if seeds >= 2 and (not self.looks or self.looks[-1].seeds < seeds):
                self._look(runs, seeds, say)
            if self._settled(seeds):
                return self._stop("every answer is settled", say)
            if seeds >= d.max_seeds:
                return self._stop(f"the seed budget is spent ({d.max_seeds} seeds per value)", say)
            if d.max_minutes and self.minutes >= d.max_minutes:
                return self._stop(f"the time budget is spent ({self.minutes:.1f} of {d.max_minutes:g} min)", say)
            next_round = d.seeds(seeds - seeds % d.per_round, d.per_round)
            if d.max_minutes and self.round_minutes and self.minutes + self.round_minutes > OVERRUN * d.max_minutes \
                    and not self._round_folder(next_round).exists():  # a started round goes on to the deadline
                return self._stop(f"the time budget is spent: a round takes {self.round_minutes:.1f} min and "
                                  f"{d.max_minutes - self.minutes:.1f} of {d.max_minutes:g} min are left", say)
            try:
                # the whole round that holds the next seed: one stopped after some of its seeds finished is
                # completed in its own folder, never begun again in another (its runs would count twice)
                self._train_round(next_round, say)
            except OutOfTime:
                self._look_if_new(say)
                if self._settled(self.seeds_done(self.runs())):  # by the seeds the stopped round finished
                    return self._stop("every answer is settled", say)
                return self._stop(f"the time budget is spent ({self.minutes:.1f} of {d.max_minutes:g} min): the round "
                                  f"was stopped at it, its jobs checkpointed; a larger --max-minutes continues it",
                                  say)
            if self.seeds_done(self.runs()) == seeds:
                raise StudyError(f"a round of seeds after {seeds} left runs unfinished (see {self.folder / 'rounds.log'}); "
                                 f"fix the cause, then continue with: ganlab study --dir {self.folder}")

    def _round_minutes_from_looks(self) -> float:
        """What a round took, for a study continued in a new process: the minutes between its last two looks
        (or its first look's per round); 0 before any look."""
        if len(self.looks) >= 2:
            return self.looks[-1].minutes - self.looks[-2].minutes
        return self.looks[0].minutes / max(1, self.looks[0].seeds // self.design.per_round) if self.looks else 0.0

    def _round_folder(self, seeds: list[int]) -> Path:
        return self.folder / f"seeds_{seeds[0]}-{seeds[-1]}"

    def _settled(self, seeds: int) -> bool:
        """Whether the look at `seeds` seeds per value (the last) settled every answer."""
        return bool(self.looks) and self.looks[-1].seeds == seeds and OPEN not in self.looks[-1].answers.values()

    def _look_if_new(self, say: Callable[[str], None]) -> None:
        """A look at the seeds finished since the last one (a round stopped at the time budget may have some)."""
        runs = self.runs()
        seeds = self.seeds_done(runs)
        if seeds >= 2 and (not self.looks or self.looks[-1].seeds < seeds):
            self._look(runs, seeds, say)

    def _train_round(self, seeds: list[int], say: Callable[[str], None]) -> None:
        """Train the round's seeds as one sweep into its own folder; continuing one, complete it in place
        (its stopped jobs resumed, the jobs it never started trained). With a time budget, the round is
        stopped when it is spent (OutOfTime), never long after."""
        clock, folder = time.monotonic(), self._round_folder(seeds)
        overrides = self.design.overrides if folder.exists() else self._still_to_train(seeds, say)
        if overrides is None:
            return
        budget = self.design.max_minutes
        deadline = clock + 60 * (OVERRUN * budget - self.minutes) if budget else None
        log = self.folder / "rounds.log"
        say(f"\nround: seeds {seeds[0]}-{seeds[-1]} of {len(swept_settings(self.design.overrides))} settings in {folder} "
            f"(output in {log})")
        try:
            if folder.exists() and not forget_unstarted_sweep(folder):
                resume_sweep(folder, say=lambda line: say(f"  {line}"), log=log, deadline=deadline)
            elif run_worker("train", "-m", *(["--config-dir", self.design.config_dir] * bool(self.design.config_dir)),
                            *overrides, f"seed={','.join(map(str, seeds))}", *self.stacking(),
                            f"hydra.sweep.dir={folder}", log=log, deadline=deadline) == 2:
                said = [line for line in log.read_text(errors="replace").splitlines() if "error" in line.lower()]
                raise StudyError(f"the round's sweep refused to start: {said[-1] if said else 'see ' + str(log)}; "
                                 f"the study stopped, nothing was lost")
        finally:
            took = (time.monotonic() - clock) / 60
            self.minutes += took
            self.save()
            finished = [r for r in self.runs() if r.path.parent == folder and r.status in DONE]
            failed = [r for r in finished if r.status != "completed"]
            say(f"  {len(finished)} runs finished in {took:.1f} min"
                + (f"; {len(failed)} failed or diverged (ranked worst): {', '.join(r.path.name for r in failed)}"
                   if failed else ""))
        self.round_minutes = took  # a round that ran to its end (one stopped part-way says nothing of it)
        if budget and budget > self.minutes and took > 0:
            say(f"  at {took:.1f} min a round, the time budget ({budget:g} min) allows about "
                f"{int((OVERRUN * budget - self.minutes) / took)} more")

    def _still_to_train(self, seeds: list[int], say: Callable[[str], None]) -> Optional[list[str]]:
        """The round's overrides after copying in (reuse_runs) every value that --reuse folders hold for all of the
        round's seeds: the swept values left to train, or None when none is left."""
        copied = reuse_runs(self.design, seeds, self.folder, set(self.placed(self.runs())))
        if not copied:
            return self.design.overrides
        say(f"  reused (copied into {self.folder / REUSED}): {', '.join(copied)}")
        [(key, prefix, values)] = swept_overrides(self.design.overrides)  # reuse_runs copies only for one swept key
        left = [v for v in values if f"{key}={v}" not in copied]
        if not left:
            return None
        return [*_without(self.design.overrides, key), f"{prefix}{key}={','.join(left)}"]

    def stacking(self) -> list[str]:
        """A round's seeds train as stacks where a measurement finds they pay (trainer.stack=auto), unless the
        study's overrides say otherwise."""
        return [] if any(o.startswith("trainer.stack=") for o in self.design.overrides) else ["trainer.stack=auto"]

    def _look(self, runs: list[RunRecord], seeds: int, say: Callable[[str], None]) -> None:
        from ganlab.judging.compare import compare
        from ganlab.judging.verdict import format_comparison
        from ganlab.training.cost import processor

        d, before = self.design, (self.looks[-1].answers if self.looks else {})
        level = stats.look_level(seeds, self.looks[-1].seeds if self.looks else 0, d.max_seeds, d.alpha)
        wanted = set(d.seeds(0, seeds))
        comparison = compare([r for (_, seed), r in self.placed(runs).items() if r.status in DONE and seed in wanted],
                             alpha=level)
        answers = {}
        for key, factor in comparison.factors.items():
            for e in factor.effects:
                name = f"{key}={e.value} vs {factor.values[0].value}"
                answers[name] = before[name] if before.get(name, OPEN) != OPEN else self._answer(e)
        self.looks.append(Look(seeds, level, round(self.minutes, 2), answers, format_comparison(comparison),
                               processor()))
        self.save()
        say(f"\nlook at {seeds} seeds per value ({self.minutes:.1f} min): tests at level {level:.3g}, alpha spent "
            f"{stats.spent(seeds / d.max_seeds, d.alpha):.3g} of {d.alpha:g}")
        for name, answer in answers.items():
            say(f"  {name}: {answer if answer != OPEN else 'not settled'}")
        for factor in comparison.factors.values():
            if factor.states:  # what is broken among the runs behind these answers
                say(f"  the runs: {factor.states}")

    def _answer(self, effect) -> str:
        """beyond noise, smaller than the minimum effect (an equivalence test at the look's level), or open."""
        if effect.verdict in ("better", "worse"):
            return f"{effect.verdict} beyond noise"
        small = self.design.min_effect and stats.rules_out(effect.differences, self.design.min_effect, effect.level,
                                                            effect.measurement_noise / 2)
        return f"smaller than {self.design.min_effect:g}" if small else OPEN

    def _stop(self, why: str, say: Callable[[str], None]) -> str:
        self.stopped = why
        self.save()
        say(f"\nstopped: {why}; {self.minutes:.1f} min of training in all")
        if not self.looks:
            return why
        for name, answer in self.looks[-1].answers.items():
            first = next(look for look in self.looks if look.answers.get(name) == answer)
            say(f"  {name}: " + (f"{answer} after {first.seeds} seeds per value, {first.minutes:.1f} min"
                                 if answer != OPEN else f"within noise after {self.looks[-1].seeds} seeds per "
                                                        f"value (not settled)"))
        say("\nthe last look:\n" + self.looks[-1].text)
        return why


def reuse_runs(design: Design, seeds: list[int], folder: Path, placed: set) -> list[str]:
    """Copy into `folder`/reused, from the design's --reuse folders, the finished runs that are exactly jobs
    of this round: the same value and seed, overrides of the same keys and the same config (but for
    how-not-what settings), scored with the yardstick this machine scores with (a run scored elsewhere with
    a classifier trained there is not), so that compare sees no other difference. Whole values only (a
    value's run for every one of `seeds`), and only for a study of one swept key. Returns the values copied
    ("key=value")."""
    from ganlab.config.schema import compose_train
    from ganlab.quality import yardstick_of

    swept = swept_overrides(design.overrides)
    if not design.reuse or len(swept) != 1 or design.config_dir:
        return []
    [(key, prefix, values)] = swept
    fixed = _without(design.overrides, key)
    candidates = [r for d in design.reuse if Path(d).is_dir() for r in find_runs(Path(d))
                  if r.status == "completed" and folder.resolve() not in r.path.resolve().parents]
    if candidates:  # scored as this study's own runs will be: the same data and classifier weights
        yardstick = yardstick_of(compose_train(*fixed, f"{prefix}{key}={values[0]}", f"seed={seeds[0]}"))
        candidates = [r for r in candidates if r.summary.yardstick == yardstick]
    copied = []
    for value in values:
        if any(((((key, value),), seed) in placed) for seed in seeds):
            continue
        found = {}
        for seed in seeds:
            job = [*fixed, f"{prefix}{key}={value}", f"seed={seed}"]
            found[seed] = next((r for r in candidates if setting_and_seed(r, {key}) == (((key, value),), seed)
                                and _keys(r.overrides) == _keys(job) and _same_config(r.path, compose_train(*job))),
                               None)
        if all(found.values()):
            for run in found.values():  # a copy, not a link: this study's own, whatever becomes of the other
                shutil.copytree(run.path, folder / REUSED / run.path.name,
                                ignore=shutil.ignore_patterns(".ganlab*.lock"))
            copied.append(f"{key}={value}")
    return copied


def _without(overrides: list[str], key: str) -> list[str]:
    """The overrides but the one that sets `key`."""
    return [o for o in overrides if o.lstrip("+~").partition("=")[0] != key]


def _keys(overrides: list[str]) -> set[str]:
    """The keys a job's overrides set, but for how-not-what and Hydra's own (its config says their values)."""
    keys = {o.lstrip("+~").partition("=")[0] for o in overrides}
    return {k for k in keys if k not in HOW_NOT_WHAT and not k.startswith("hydra")}


def _same_config(run: Path, composed) -> bool:
    """The run's saved config is the one these overrides compose today (defaults may have moved since), but for
    how-not-what settings."""
    from omegaconf import OmegaConf

    try:
        saved = OmegaConf.to_container(OmegaConf.load(run / ".hydra" / "config.yaml"))
    except Exception:
        return False
    today = OmegaConf.to_container(composed)
    for key in HOW_NOT_WHAT:
        for config in (saved, today):
            section, _, leaf = key.partition(".")
            if isinstance(config.get(section), dict):
                config[section].pop(leaf, None)
    return saved == today


def _seal(state: dict) -> str:
    """A hash of a study's record (less its seal), written with it: an edit by hand no longer matches."""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
