"""ganlab study: rounds of seeds until every answer is settled, on a tiny real ring (a few seconds a run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ganlab.judging.study import Design, reuse_runs
from tests.conftest import QUICK_METRICS, experiment_script, ganlab

# Its module-scoped run is made once: under xdist, this file's tests run on one worker.
pytestmark = pytest.mark.xdist_group("study")

# Digits in 2 s a run. lr 1e-6 stays near its start (fd ~95) where 2e-3 reaches ~20-30: a large effect.
# 2e-3 against 2.0001e-3 is an A/A pair: the same GAN, whose runs part ways after a few steps.
DIGITS = ["hydra/launcher=basic", "trainer.threads=1", "trainer.epochs=3", "trainer.progress=false", "+exp=narrow",
          *QUICK_METRICS]
NARROW = "# @package _global_\n# a user's own study file (--config-dir): narrow networks\ngenerator:\n  width: 8\n" \
         "discriminator:\n  width: 8\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    """At most 8 seeds per value; stopped by its time budget of 15 s (within the first round, or the second on
    a fast machine), then continued."""
    folder = tmp_path_factory.mktemp("study") / "s"
    conf = folder.parent / "myconf"
    (conf / "exp").mkdir(parents=True)
    (conf / "exp" / "narrow.yaml").write_text(NARROW)
    first = ganlab("study", *DIGITS, "optim.lr=1e-6,2e-3,2.0001e-3", "--max-seeds", "8", "--min-effect", "30",
                   "--dir", str(folder), "--max-minutes", "0.25", "--config-dir", str(conf))  # its rounds are processes
    assert first.returncode == 0, first.stdout + first.stderr
    assert "stopped: the time budget is spent" in first.stdout
    assert json.loads((folder / "study.json").read_text())["minutes"] < 0.25 + 0.1  # the round stopped at it
    second = ganlab("study", "--dir", str(folder), "--max-minutes", "30")
    assert second.returncode == 0, second.stdout + second.stderr
    return folder, first.stdout + second.stdout


def test_a_study_settles_a_large_effect_early_and_never_calls_an_aa_pair_different(study):
    folder, out = study
    state = json.loads((folder / "study.json").read_text())
    assert state["stopped"] == "every answer is settled" and state["looks"][-1]["seeds"] < 8
    answers = state["looks"][-1]["answers"]
    [large] = [a for name, a in answers.items() if name.startswith("optim.lr=1e-06 vs")]
    [aa] = [a for name, a in answers.items() if not name.startswith("optim.lr=1e-06 vs")]
    assert large == "worse beyond noise" and aa == "smaller than 30"
    assert "worse beyond noise after" in out and "smaller than 30 after" in out
    assert "look at 2 seeds per value" in out and "alpha spent" in out
    config = (next(folder.glob("seeds_1-2/*/.hydra")) / "config.yaml").read_text()
    assert "width: 8" in config and "a user's own study file" not in config  # the user's file was composed


def test_a_continued_study_reuses_its_runs_and_spends_no_more_than_alpha(study):
    folder, out = study
    state = json.loads((folder / "study.json").read_text())
    assert "stopped: the time budget is spent" in out  # the first call; the second went on from where it stopped
    assert any(said in out for said in ("continuing after", "resuming ", "starting "))
    assert len(list((folder / "seeds_1-2").glob("*/summary.json"))) == 6  # round 1 trained once, not twice
    assert len(list((folder / "seeds_1-2").glob("*/.hydra"))) == 6
    assert sum(look["level"] for look in state["looks"]) <= 0.05 + 1e-12


def test_compare_on_a_study_says_its_answers_are_the_studys_and_follows_them_over_training(study):
    folder, _ = study
    out = ganlab("compare", str(folder))
    assert out.returncode == 0 and "is a study run until settled" in out.stdout
    assert "come from" not in out.stdout  # its rounds are one study, not a confound
    assert "over training: optim.lr=1e-06 is behind optim.lr=" in out.stdout
    assert (folder / "compare" / "over_training.png").stat().st_size > 5000
    payload = json.loads(ganlab("compare", str(folder), "--json").stdout)
    slow = next(e for e in payload["keys"]["optim.lr"]["effects"] if e["value"] == "1e-06")
    assert slow["course"]["steps"] and len(slow["course"]["low"]) == len(slow["course"]["steps"])
    assert slow["kind"].endswith("ends worse")
    assert "\nverdict: optim.lr=" in (folder / "rounds.log").read_text()  # each round's sweep ends with its verdict


def test_the_table_of_a_study_reads_change_vs_base_with_its_answers_numbers_and_course(study):
    folder, _ = study
    state = json.loads((folder / "study.json").read_text())
    out = ganlab("study", "--table", str(folder), str(folder))
    assert out.returncode == 0, out.stderr
    header, rule, *rows = out.stdout.strip().splitlines()
    assert "answer" in header and "change - base [95% interval]" in header and len(rows) == 4  # 2 answers, twice
    [large] = [r for r in rows[:2] if "vs 1e-06" in r]  # the base is the first value listed: 1e-6 (the worst)
    cells = [c.strip() for c in large.strip("|").split("|")]
    assert cells[0].startswith(f"[{folder.name}](") and cells[0].endswith("vs 1e-06")
    assert cells[1] == "better beyond noise"  # the study's "1e-06 vs best: worse", turned round to read change vs base
    difference, low, high = (float(x) for x in cells[2].replace("[", "").replace("]", "").replace(",", "").split())
    assert difference < -30 and low <= difference <= high < 0
    assert cells[3] == str(state["looks"][-1]["seeds"])
    assert cells[4] == f"{state['minutes']:.0f} min on {state['looks'][-1]['processor']}" and "(" in cells[4]
    assert cells[5].endswith("ends better")  # compare's "1e-06 ... ends worse", turned round
    [aa] = [r for r in rows[:2] if "vs 1e-06" not in r]
    assert "smaller than 30" in aa  # neither value is the base: against the best, as the study tested it
    unstarted = ganlab("study", "--table", str(folder.parent / "myconf"))
    assert unstarted.returncode == 2 and "holds no study" in unstarted.stderr


def test_a_study_continued_on_another_machine_names_both_machines_beside_its_wall_time():
    from types import SimpleNamespace

    from ganlab.judging.study_table import processors

    looks = [SimpleNamespace(processor=p) for p in ("Intel Xeon (AMX-BF16)", "Intel Xeon (AMX-BF16)", "",
                                                     "AMD EPYC (AVX512-BF16)")]  # "": a look that did not record it
    assert processors(SimpleNamespace(looks=looks)) == "Intel Xeon (AMX-BF16), then AMD EPYC (AVX512-BF16)"


def test_a_studys_kept_record_rebuilds_its_table_and_continues_on_a_machine_whose_outputs_are_new(study, tmp_path,
                                                                                                     monkeypatch):
    """experiments/fashion_questions.py keeps each study's records in git (no checkpoints, no images) and puts
    them back in a new outputs/."""
    from ganlab.judging.study_table import study_rows

    folder, _ = study
    script = experiment_script("fashion_questions")
    monkeypatch.setattr(script, "ROOT", tmp_path / "outputs")
    monkeypatch.setattr(script, "KEPT", tmp_path / "kept")
    shutil.copytree(folder, tmp_path / "outputs" / "q")
    script.keep("q")
    kept = [p for p in (tmp_path / "kept" / "q").rglob("*") if p.is_file()]
    assert (tmp_path / "kept" / "q" / "study.json").is_file() and len({p.parent for p in kept}) > 6
    assert not [p for p in kept if p.suffix in (".pt", ".png") or ".ganlab" in p.name]
    assert sum(p.stat().st_size for p in kept) < 0.1 * sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(tmp_path / "outputs")  # a new machine
    script.restore("q")
    restored = tmp_path / "outputs" / "q"
    assert [r.cells(link=False) for r in study_rows(restored)] == [r.cells(link=False) for r in study_rows(folder)]
    more = ganlab("study", "--dir", str(restored))
    assert more.returncode == 0 and "every answer is settled" in more.stdout and "round:" not in more.stdout


@pytest.mark.slow  # 30 s: two studies as processes
def test_a_study_whose_seed_budget_is_spent_names_the_new_study_that_takes_its_runs_as_its_first_seeds(tmp_path):
    import shlex

    from ganlab.judging.study_table import study_rows

    quick = ["hydra/launcher=basic", "trainer.threads=1", "trainer.epochs=1", "trainer.progress=false",
             "trainer.stack=1", *QUICK_METRICS]
    first = ganlab("study", *quick, "optim.lr=2e-3,2.0001e-3", "--max-seeds", "2", "--dir", str(tmp_path / "a"))
    assert first.returncode == 0 and "the seed budget is spent (2 seeds per value)" in first.stdout, first.stdout
    [row] = study_rows(tmp_path / "a")
    command = row.answer.partition("more seeds are a new study (its looks spend a new 5%): ")[2].strip("`")
    assert command.startswith("ganlab study ") and "--max-seeds 4" in command
    more = ganlab(*shlex.split(command)[1:])
    assert more.returncode == 0, more.stdout + more.stderr
    assert len(list((tmp_path / "a_4_seeds" / "reused").iterdir())) == 4  # seeds 1-2 of both values, not retrained
    assert not (tmp_path / "a_4_seeds" / "seeds_1-2").exists() and (tmp_path / "a_4_seeds" / "seeds_3-4").is_dir()


@pytest.mark.slow  # 22 s: two studies as processes; the default suite's table test reads a real study (the fixture)
def test_a_study_reuses_the_runs_of_its_jobs_that_another_study_made_and_trains_only_the_rest(tmp_path):
    quick = ["hydra/launcher=basic", "trainer.threads=1", "trainer.epochs=1", "trainer.progress=false",
             "trainer.stack=1", *QUICK_METRICS]
    first = ganlab("study", *quick, "optim.lr=1e-6,2e-3", "--max-seeds", "2", "--dir", str(tmp_path / "a"))
    assert first.returncode == 0, first.stdout + first.stderr
    second = ganlab("study", *quick, "optim.lr=1e-6,5e-3", "--max-seeds", "2", "--dir", str(tmp_path / "b"),
                    "--reuse", str(tmp_path / "a"))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "reused (copied into" in second.stdout and "optim.lr=1e-06" in second.stdout
    reused = sorted(p.name for p in (tmp_path / "b" / "reused").iterdir())
    assert len(reused) == 2 and all("lr=1e-06" in name for name in reused)
    trained = [p.parent.name for p in (tmp_path / "b" / "seeds_1-2").glob("*/summary.json")]
    assert len(trained) == 2 and all("lr=0.005" in name for name in trained)  # only the value no other study had
    look = json.loads((tmp_path / "b" / "study.json").read_text())["looks"][-1]
    assert look["seeds"] == 2 and len(look["answers"]) == 1  # each value counted once, the copied one too
    # a run whose saved config is not what its overrides compose today (a default moved) is not reused
    design = Design([*quick, "optim.lr=2e-3,7e-3"], max_seeds=2, reuse=[str(tmp_path / "a")])
    assert reuse_runs(design, [1, 2], tmp_path / "c", set()) == ["optim.lr=0.002"]
    [changed] = (tmp_path / "a").glob("seeds_1-2/*lr=0.002*seed=2*/.hydra/config.yaml")
    changed.write_text(changed.read_text().replace("batch_size: 64", "batch_size: 32"))
    assert reuse_runs(design, [1, 2], tmp_path / "d", set()) == [] and not (tmp_path / "d").exists()
    # nor is a run scored with another yardstick (a classifier trained on another machine)
    design = Design([*quick, "optim.lr=1e-6,7e-3"], max_seeds=2, reuse=[str(tmp_path / "a")])
    assert reuse_runs(design, [1, 2], tmp_path / "f", set()) == ["optim.lr=1e-06"]
    [elsewhere] = (tmp_path / "a").glob("seeds_1-2/*lr=1e-06*seed=1*/summary.json")
    summary = json.loads(elsewhere.read_text())
    summary["quality"]["scored_with"]["yardstick"] += "-elsewhere"
    elsewhere.write_text(json.dumps(summary))
    assert reuse_runs(design, [1, 2], tmp_path / "g", set()) == [] and not (tmp_path / "g").exists()
    refused = ganlab("study", "optim.lr=1e-4,2e-4", "--dir", str(tmp_path / "e"), "--reuse", str(tmp_path / "none"))
    assert refused.returncode == 2 and "--reuse" in refused.stderr and not (tmp_path / "e").exists()


@pytest.mark.parametrize("args, message", [
    (["optim.lr=1e-4"], "nothing to compare"),
    (["optim.lr=1e-4,2e-4", "seed=1,2"], "a study picks the seeds itself"),
    (["optim.lr=1e-4,2e-4", "--max-seeds", "1"], "--max-seeds 1"),
    (["optim.lr=1e-4,2e-4", "--min-effect", "-1"], "--min-effect -1"),
    (["--reuse", ".", "optim.lr=1e-4"], "nothing to compare"),  # an override after --reuse DIR is an override
])
def test_a_study_that_cannot_run_says_why_in_one_line_and_writes_nothing(tmp_path, args, message):
    out = ganlab("study", *args, "--dir", str(tmp_path / "s"))
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_a_study_refuses_a_folder_that_holds_something_else(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    out = ganlab("study", "optim.lr=1e-4,2e-4", "--dir", str(tmp_path))
    assert out.returncode == 2 and "holds no study" in out.stderr and (tmp_path / "mine.txt").read_text() == "keep"


def test_continuing_a_round_resumes_its_stopped_jobs_and_trains_the_ones_never_started(tmp_path, monkeypatch):
    """An interrupted round: seed 1's lr=0.1 job finished, its lr=0.2 job has a folder but never trained, seed 2's
    lr=0.1 job was stopped, its lr=0.2 job never started. Continuing resumes the stopped and the untrained jobs in
    their folders and trains the last into the same round folder, as the round's launcher ran them (2 at a time, each
    told it shares the machine: cores // 2 threads, as the numbers of an uninterrupted round), its overrides as
    Hydra's sweeper spells them in its siblings (False, not false); nothing else."""
    from ganlab.judging.study import Design, Study
    from ganlab.training import sweep as sweep_module

    folder = tmp_path / "s"  # trainer.progress says how a job runs, not what: Hydra leaves it out of a job's name
    study = Study.start(folder, Design(["+exp=baseline", "trainer.progress=false", "optim.lr=0.1,0.2"], max_seeds=4))
    round_dir = folder / "seeds_1-2"
    round_dir.mkdir()
    (round_dir / "multirun.yaml").write_text(  # what Hydra wrote when the round's sweep started
        "hydra:\n  sweeper:\n    _target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper\n"
        "  launcher:\n    _target_: hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher\n    n_jobs: 2\n"
        "  overrides:\n    task: [+exp=baseline, trainer.progress=false, 'optim.lr=0.1,0.2', 'seed=1,2']\n"
        "  runtime:\n    config_sources:\n    - {path: /my/conf, schema: file, provider: command-line}\n")
    for lr, seed, status in (("0.1", 1, "completed"), ("0.2", 1, None), ("0.1", 2, "running")):
        job = round_dir / f"lr{lr}-seed{seed}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- +exp=baseline\n- optim.lr={lr}\n- seed={seed}\n")
        if status:  # None: Hydra made the folder, and the sweep was stopped before the job trained
            (job / "summary.json").write_text(json.dumps({"status": status}))
        (job / ".ganlab.lock").write_text("pid 1 on gone\n")  # a claim no process holds: killed, so stopped
    calls = []
    monkeypatch.setattr(sweep_module, "run_workers", lambda commands, at_once, log, deadline=None:
                        calls.append((commands, at_once)))
    study._train_round([1, 2], say=lambda line: None)
    assert calls == [([["resume", "--jobs", "2", str(round_dir / "lr0.1-seed2")],
                       ["resume", "--jobs", "2", str(round_dir / "lr0.2-seed1")],
                       ["train", "--jobs", "2", "--config-dir", "/my/conf", "+exp=baseline", "trainer.progress=False",
                        "optim.lr=0.2", "seed=2",
                        f"hydra.run.dir='{round_dir.resolve() / '+exp=baseline,optim.lr=0.2,seed=2'}'"]], 2)]


def fake_round(folder: Path, jobs: list[tuple[str, str, int]]) -> None:
    """Job folders as a round's sweep leaves them: (folder name, lr, seed), each completed."""
    for name, lr, seed in jobs:
        job = folder / name
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- optim.lr={lr}\n- seed={seed}\n")
        (job / "summary.json").write_text(json.dumps({"status": "completed"}))


def test_a_round_stopped_after_its_first_seed_finished_is_continued_in_its_own_folder(tmp_path, monkeypatch):
    """Seed 1 of every setting finished, seed 2 stopped: the next round is seeds 1-2 again, completed in place,
    not a new seeds_2-2 whose runs would count twice."""
    from ganlab.judging.study import Design, Study
    from ganlab.training.processes import OutOfTime

    folder = tmp_path / "s"
    study = Study.start(folder, Design(["optim.lr=0.1,0.2"], max_seeds=4, per_round=2, max_minutes=10))
    fake_round(folder / "seeds_1-2", [("a", "0.1", 1), ("b", "0.2", 1)])
    rounds = []

    def train_round(seeds, say):
        rounds.append(seeds)
        raise OutOfTime("train")  # the round is all this test needs

    monkeypatch.setattr(study, "_train_round", train_round)
    study.run(say=lambda line: None)
    assert rounds == [[1, 2]]


def test_a_round_stopped_at_the_budget_whose_finished_seeds_settle_it_says_settled(tmp_path, monkeypatch):
    """The round's seeds finished, then the deadline stopped it (its last steps, a slow evaluation): the look at
    them settles every answer, and the study says so, not that its budget is spent."""
    from ganlab.judging.study import Design, Look, Study
    from ganlab.training.processes import OutOfTime

    folder = tmp_path / "s"
    study = Study.start(folder, Design(["optim.lr=0.1,0.2"], max_seeds=4, per_round=2, max_minutes=10))

    def train_round(seeds, say):
        fake_round(folder / "seeds_1-2", [("a", "0.1", 1), ("b", "0.2", 1), ("c", "0.1", 2), ("d", "0.2", 2)])
        raise OutOfTime("train")

    def look(runs, seeds, say):
        study.looks.append(Look(seeds, 0.01, 10.0, {"optim.lr=0.2 vs 0.1": "better beyond noise"}))

    monkeypatch.setattr(study, "_train_round", train_round)
    monkeypatch.setattr(study, "_look", look)
    assert study.run(say=lambda line: None) == "every answer is settled"


def test_a_round_that_fits_the_budget_with_5_percent_to_spare_is_started_and_given_that_long(tmp_path, monkeypatch):
    """8 of 10 minutes spent: a round of 2.3 min is started (it ends at 10.3, within 5% of the budget) and stopped
    no earlier than 10.5 min, so that it is not killed just before its end; one of 2.6 min is not started."""
    import time

    from ganlab.judging import study as study_module
    from ganlab.judging.study import Design, Study

    folder = tmp_path / "s"
    study = Study.start(folder, Design(["optim.lr=0.1,0.2"], max_seeds=4, max_minutes=10))
    study.minutes, study.round_minutes = 8.0, 2.3
    deadlines = []
    monkeypatch.setattr(study_module, "run_worker", lambda *args, log, deadline: deadlines.append(deadline) or 0)
    study._train_round([1, 2], say=lambda line: None)
    assert deadlines and 60 * 2.5 - 1 < deadlines[0] - time.monotonic() <= 60 * 2.5
    study.minutes, study.round_minutes, said = 8.0, 2.6, []
    monkeypatch.setattr(study, "_train_round", lambda seeds, say: pytest.fail("a round that cannot fit was started"))
    assert study.run(say=said.append).startswith("the time budget is spent: a round takes 2.6 min")


def test_a_continued_study_knows_its_round_time_from_its_looks_and_starts_none_that_cannot_fit(tmp_path, monkeypatch):
    """Looks at 2 and 4 seeds, at 9 and 18.5 minutes, 40 of 45 minutes spent: a round takes 9.5 min, and the study
    continued in a new process starts none (it would be stopped at the budget); a round it had started goes on."""
    from ganlab.judging.study import Design, Look, Study
    from ganlab.training.processes import OutOfTime

    folder = tmp_path / "s"
    study = Study.start(folder, Design(["optim.lr=0.1,0.2"], max_seeds=10, max_minutes=45))
    study.looks = [Look(2, 0.01, 9.0, {"optim.lr=0.2 vs 0.1": "open"}), Look(4, 0.01, 18.5, {"optim.lr=0.2 vs 0.1": "open"})]
    study.minutes = 40.0
    study.save()
    continued = Study.load(folder)
    monkeypatch.setattr(continued, "_train_round", lambda seeds, say: pytest.fail("a round that cannot fit was started"))
    monkeypatch.setattr(continued, "seeds_done", lambda runs: 4)
    assert continued.run(say=lambda line: None).startswith("the time budget is spent: a round takes 9.5 min")
    (folder / "seeds_5-6").mkdir()  # a round started and stopped: it goes on to the deadline (its runs checkpoint)
    rounds = []

    def train_round(seeds, say):
        rounds.append(seeds)
        raise OutOfTime("train")

    monkeypatch.setattr(continued, "_train_round", train_round)
    continued.run(say=lambda line: None)
    assert rounds == [[5, 6]]


def test_a_look_counts_each_setting_and_seed_once_and_names_both_folders_of_a_duplicate(tmp_path):
    from ganlab.judging.study import Design, Study

    folder = tmp_path / "s"
    Study.start(folder, Design(["optim.lr=0.1,0.2"], max_seeds=2))
    fake_round(folder / "seeds_1-2", [("a", "0.1", 1), ("b", "0.2", 1), ("c", "0.1", 2), ("d", "0.2", 2)])
    fake_round(folder / "seeds_1-2-again", [("a", "0.1", 2)])
    out = ganlab("study", "--dir", str(folder))
    assert out.returncode == 2 and "two runs of one setting and seed" in out.stderr
    assert str(folder / "seeds_1-2" / "c") in out.stderr and str(folder / "seeds_1-2-again" / "a") in out.stderr


def test_a_study_record_edited_by_hand_or_unrunnable_is_refused_in_one_line(tmp_path):
    from ganlab.judging.study import Design, Study

    folder = tmp_path / "s"
    Study.start(folder, Design(["optim.lr=0.1,0.2"]))
    state = json.loads((folder / "study.json").read_text())
    edited = {**state, "design": {**state["design"], "alpha": 0.9}}  # a looser test, its looks cleared
    (folder / "study.json").write_text(json.dumps(edited))
    out = ganlab("study", "--dir", str(folder))
    assert out.returncode == 2 and "was changed since ganlab wrote it (its seal does not match)" in out.stderr
    unsealed = {k: v for k, v in state.items() if k != "seal"}  # as an earlier ganlab wrote it, per_round 0
    (folder / "study.json").write_text(json.dumps({**unsealed, "design": {**state["design"], "per_round": 0}}))
    out = ganlab("study", "--dir", str(folder))
    assert out.returncode == 2 and "its design cannot run (--per-round 0: give 1 to" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and json.loads((folder / "study.json").read_text())["design"][
        "per_round"] == 0  # nothing rewritten


def test_a_second_process_on_a_study_that_another_holds_exits_2_having_written_nothing(tmp_path):
    """The fast half of the SIGTERM test below: another process holds the study's lock."""
    import subprocess
    import sys

    from ganlab.judging.study import Design, Study
    from ganlab.record.run_folder import STUDY_LOCK

    folder = tmp_path / "s"
    Study(folder, Design(["optim.lr=0.1,0.2"])).save()  # its record, and no hold of this process's
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                               "os.O_CREAT | os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                               "time.sleep(60)", str(folder / STUDY_LOCK)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = (folder / "study.json").read_text()
        second = ganlab("study", "--dir", str(folder))
        assert second.returncode == 2 and "is being written by another ganlab process" in second.stderr
        assert (folder / "study.json").read_text() == before and not (folder / "seeds_1-2").exists()
    finally:
        holder.kill()


@pytest.mark.slow  # 11 s: a study, its sweep and its workers are processes; the lock is checked by the test above
def test_sigterm_stops_a_study_and_its_sweep_and_a_second_process_on_it_writes_nothing(tmp_path):
    """A study in its own process, mid-round: a second `ganlab study --dir` exits 2 having written nothing;
    SIGTERM stops the study and the sweep it started (no worker outlives it) and records its minutes."""
    import signal
    import subprocess
    import sys
    import time

    from ganlab.record.catalog import load_run
    from ganlab.record.run_folder import writer_alive

    folder = tmp_path / "s"
    tiny = ["data.limit=480", "trainer.epochs=20", "trainer.batch_size=16", "trainer.log_every=2", "generator.width=8",
            "discriminator.width=8", "metrics.enabled=false", "trainer.progress=false"]
    study = subprocess.Popen([sys.executable, "-m", "ganlab.cli", "study", *tiny, "optim.lr=1e-4,2e-4",
                              "--max-seeds", "2", "--dir", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 120
    while not any(len(p.read_text().splitlines()) > 3 for p in folder.glob("seeds_1-2/*/metrics.csv")):
        assert study.poll() is None and time.monotonic() < deadline, study.communicate()
        time.sleep(0.1)
    before = (folder / "study.json").read_text()
    second = ganlab("study", "--dir", str(folder))
    assert second.returncode == 2 and "is being written by another ganlab process" in second.stderr, second.stderr
    assert (folder / "study.json").read_text() == before
    study.send_signal(signal.SIGTERM)
    out, err = study.communicate(timeout=120)
    assert study.returncode == 130 and "ganlab study --dir" in err, (study.returncode, out, err)
    jobs = [p for p in (folder / "seeds_1-2").iterdir() if (p / ".hydra").is_dir()]
    assert jobs and not any(writer_alive(job) for job in jobs)  # every worker let go of its run: none goes on
    statuses = {load_run(job).status for job in jobs}  # "not started": its folder made, stopped before it trained
    assert statuses <= {"interrupted", "completed", "not started"}, (statuses, (folder / "rounds.log").read_text()[-3000:])
    assert json.loads((folder / "study.json").read_text())["minutes"] > 0


@pytest.mark.slow  # 21 s: it waits for its deadline; the study fixture above checks a study keeps its budget
def test_a_command_given_a_deadline_is_stopped_at_it_and_its_run_checkpointed(tmp_path):
    """What stops a study's round at its --max-minutes: the round's command is sent SIGTERM at the deadline."""
    import time

    from ganlab.record.catalog import load_run
    from ganlab.training.processes import OutOfTime, run_worker

    run = tmp_path / "run"
    start = time.monotonic()
    with pytest.raises(OutOfTime):
        run_worker("train", "data.limit=480", "trainer.epochs=200", "metrics.enabled=false", "trainer.progress=false",
                   f"hydra.run.dir={run}", log=tmp_path / "log", deadline=start + 20)  # 20 s: started on a busy machine
    assert time.monotonic() - start < 20 + 10  # stopped at the deadline, not run to its end
    assert load_run(run).status == "interrupted" and (run / "checkpoints" / "last.pt").is_file()
