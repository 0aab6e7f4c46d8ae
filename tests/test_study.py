"""ganlab study: rounds of seeds until every answer is settled, on a tiny real ring (a few seconds a run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import QUICK_METRICS, ganlab

# Its module-scoped run is made once: under xdist, this file's tests run on one worker.
pytestmark = pytest.mark.xdist_group("study")

# Digits in 2 s a run. lr 1e-6 stays near its start (fd ~95) where 2e-3 reaches ~20-30: a large effect.
# 2e-3 against 2.0001e-3 is an A/A pair: the same GAN, whose runs part ways after a few steps.
DIGITS = ["hydra/launcher=basic", "trainer.threads=1", "trainer.epochs=3", "trainer.progress=false", "generator.width=8", "discriminator.width=8", *QUICK_METRICS]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    """At most 8 seeds per value; stopped by its time budget after the first round, then continued."""
    folder = tmp_path_factory.mktemp("study") / "s"
    first = ganlab("study", *DIGITS, "optim.lr=1e-6,2e-3,2.0001e-3", "--max-seeds", "8", "--min-effect", "30",
                   "--dir", str(folder), "--max-minutes", "0.01")  # in this process; its rounds are processes
    assert first.returncode == 0, first.stdout + first.stderr
    assert "stopped: the time budget is spent" in first.stdout
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


def test_a_continued_study_reuses_its_runs_and_spends_no_more_than_alpha(study):
    folder, out = study
    state = json.loads((folder / "study.json").read_text())
    assert "continuing after 1 looks" in out
    assert len(list((folder / "seeds_1-2").glob("*/summary.json"))) == 6  # round 1 trained once, not twice
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


@pytest.mark.parametrize("args, message", [
    (["optim.lr=1e-4"], "nothing to compare"),
    (["optim.lr=1e-4,2e-4", "seed=1,2"], "a study picks the seeds itself"),
    (["optim.lr=1e-4,2e-4", "--max-seeds", "1"], "--max-seeds 1"),
    (["optim.lr=1e-4,2e-4", "--min-effect", "-1"], "--min-effect -1"),
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
    """An interrupted round: seed 1's two jobs finished, seed 2's lr=0.1 job was stopped, its lr=0.2 job never
    started. Continuing resumes the one and trains the other into the same round folder; nothing else."""
    from ganlab.judging.study import Design, Study
    from ganlab.training import sweep as sweep_module

    folder = tmp_path / "s"
    study = Study.start(folder, Design(["+exp=baseline", "optim.lr=0.1,0.2"], max_seeds=4))
    round_dir = folder / "seeds_1-2"
    round_dir.mkdir()
    (round_dir / "multirun.yaml").write_text(  # what Hydra wrote when the round's sweep started
        "hydra:\n  sweeper:\n    _target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper\n"
        "  overrides:\n    task: [+exp=baseline, 'optim.lr=0.1,0.2', 'seed=1,2']\n")
    for lr, seed, status in (("0.1", 1, "completed"), ("0.2", 1, "completed"), ("0.1", 2, "running")):
        job = round_dir / f"lr{lr}-seed{seed}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- +exp=baseline\n- optim.lr={lr}\n- seed={seed}\n")
        (job / "summary.json").write_text(json.dumps({"status": status}))
        (job / ".ganlab.lock").write_text("pid 1 on gone\n")  # a claim no process holds: killed, so stopped
    calls = []
    monkeypatch.setattr(sweep_module, "run_ganlab", lambda *args, log: calls.append(args))
    study._train_round([1, 2], say=lambda line: None)
    assert calls == [("resume", str(round_dir / "lr0.1-seed2")),
                     ("train", "+exp=baseline", "optim.lr=0.2", "seed=2",
                      f"hydra.run.dir='{round_dir.resolve() / '+exp=baseline,optim.lr=0.2,seed=2'}'")]
