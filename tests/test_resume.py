"""Nothing lost: exact resume after SIGKILL, Ctrl-C / SIGTERM, atomic writes, bad files, full disks."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganlab.record.checkpoints import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint
from ganlab.record.run_folder import RunFolderError
from ganlab.training.job import run_job
from tests.conftest import QUICK_METRICS, REPO, TINY_POINTS, ganlab, make_cfg, run_cli

# Its module-scoped run is made once: under xdist, this file's tests run on one worker.
pytestmark = pytest.mark.xdist_group("resume")

# A run of a few seconds in 5 epochs with a checkpoint every epoch and an evaluation every other one.
RUN = ["trainer.epochs=5", "trainer.batch_size=32", "trainer.log_every=5", "trainer.checkpoint_every=1",
       "trainer.progress=false", "trainer.threads=1", "generator.width=8", "discriminator.width=8",
       "metrics.every=2", *QUICK_METRICS]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganlab.cli", *args]


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]


def assert_same_run(a: Path, b: Path) -> None:
    """Bit for bit the same networks and optimisers, and the same CSV rows, each step once."""
    ca, cb = (torch.load(p / "checkpoints" / "last.pt", weights_only=True) for p in (a, b))
    for part in ("generator", "discriminator"):
        assert all(torch.equal(ca[part][k], cb[part][k]) for k in ca[part]), part
    for part in ("opt_g", "opt_d"):
        for key, state in ca[part]["state"].items():
            assert all(torch.equal(state[k], cb[part]["state"][key][k]) for k in state), part
    assert rows(a / "metrics.csv") == rows(b / "metrics.csv")
    steps = [r["step"] for r in rows(b / "metrics.csv")]
    assert len(steps) == len(set(steps))
    assert rows(a / "quality.csv") == rows(b / "quality.csv")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The run never interrupted (trained in this process: one torch thread, as the killed runs)."""
    folder = tmp_path_factory.mktemp("ref") / "run"
    assert ganlab("train", *RUN, f"hydra.run.dir={folder}").returncode == 0
    return folder


def start_and_wait_for_a_checkpoint(folder: Path) -> subprocess.Popen:
    process = subprocess.Popen(cli("train", *RUN, f"hydra.run.dir={folder}"), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (folder / "checkpoints" / "last.pt").exists():
        assert process.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    return process


def start_and_wait_for_training(folder: Path, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen(cli("train", *RUN, *extra, f"hydra.run.dir={folder}"), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (folder / "metrics.csv").exists():
        assert process.poll() is None, "the run ended before its first metrics row"
        time.sleep(0.01)
    return process


def logged_step(folder: Path) -> int:
    """The last step whose metrics row is written whole (0 before the first)."""
    try:
        lines = (folder / "metrics.csv").read_text().splitlines()
    except FileNotFoundError:
        return 0
    whole = [line for line in lines[1:] if line.count(",") == lines[0].count(",")]
    return int(whole[-1].split(",")[0]) if whole else 0


STEPS = 5 * (1437 // 32)  # RUN's G steps


def kill_and_resume(folder: Path, step: int) -> None:
    """SIGKILL the run once its metrics show `step` (before, during or after a checkpoint, wherever
    the run stands when the kill lands), then resume it. The kill is placed by the run's own progress,
    not by a clock: it lands on any machine, with at least a third of the run still to go."""
    assert 0 < step <= 2 * STEPS // 3
    process = start_and_wait_for_training(folder)
    while logged_step(folder) < step:
        assert process.poll() is None, "the run ended before the step it was to be killed at"
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before the kill"
    assert json.loads((folder / "summary.json").read_text())["status"] == "running"  # killed: no chance to say otherwise
    out = ganlab("resume", str(folder), "trainer.progress=false")
    assert out.returncode == 0, out.stderr


def test_a_run_killed_while_writing_a_checkpoint_resumes_bit_for_bit(reference, tmp_path):
    folder = tmp_path / "run"
    process = start_and_wait_for_training(folder, "trainer.checkpoint_minutes=1e-9")  # a checkpoint every step
    while not list((folder / "checkpoints").glob(".last.pt.*.tmp")):
        assert process.poll() is None, "the run ended before a checkpoint write was caught"
    process.kill()  # while a checkpoint is being written (or a moment after its rename)
    process.wait()
    assert ganlab("resume", str(folder), "trainer.progress=false").returncode == 0
    assert_same_run(reference, folder)


def test_a_run_killed_at_a_random_step_resumes_to_the_same_weights_bit_for_bit(reference, tmp_path):
    kill_and_resume(tmp_path / "run", random.Random(0).randint(5, 2 * STEPS // 3))
    assert_same_run(reference, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and len(summary["resumed"]) == 1


@pytest.mark.slow
def test_twenty_kill_points_all_resume_bit_for_bit(reference, tmp_path):
    points = sorted(random.Random(100).sample(range(1, 2 * STEPS // 3 + 1), 20))
    for point in points:
        kill_and_resume(tmp_path / f"run{point}", point)
        assert_same_run(reference, tmp_path / f"run{point}")
    print(f"\nkilled at steps {points}: all 20 resumed bit for bit")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_checkpoint_mark_interrupted_and_resume_exactly(reference, tmp_path, sig):
    folder = tmp_path / "run"
    process = start_and_wait_for_a_checkpoint(folder)
    while logged_step(folder) < STEPS // 2:  # half way, after the first checkpoint: placed by progress, not a clock
        assert process.poll() is None, "the run ended before the signal"
        time.sleep(0.005)
    sent = time.time()
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    assert time.time() - sent < 10 and process.returncode == 130
    assert f"ganlab resume {folder}" in stderr
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert torch.load(folder / "checkpoints" / "last.pt", weights_only=True)["step"] == summary["steps_done"]
    assert ganlab("resume", str(folder)).returncode == 0
    assert_same_run(reference, folder)


WRITER = """
import sys, torch, json
from pathlib import Path
from ganlab.record.run_folder import RunFolder
from ganlab.record.summary import Summary
run = RunFolder(Path(sys.argv[1])).create()
i = 0
while True:
    i += 1
    run.save_checkpoint({"generator": {"w": torch.full((400_000,), float(i))}, "config": {}, "step": i})
    Summary(status="running", step=i, pad="x" * 200_000).write(run.path)
"""


@pytest.mark.parametrize("attempts", [3, pytest.param(8, marks=pytest.mark.slow)])
def test_a_kill_during_writes_never_leaves_a_truncated_checkpoint_or_summary(tmp_path, attempts):
    for attempt in range(attempts):
        folder = tmp_path / f"w{attempt}"
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=REPO)
        while not (folder / "summary.json").exists():
            assert process.poll() is None, "the writer died before its first summary"
            time.sleep(0.01)
        time.sleep(random.Random(attempt).uniform(0.05, 0.6))
        process.kill()
        process.wait()
        state = load_checkpoint(folder / "checkpoints" / "last.pt")
        assert torch.all(state["generator"]["w"] == state["step"])
        assert json.loads((folder / "summary.json").read_text())["status"] == "running"


def test_a_checkpoint_crafted_to_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.pt"
    torch.save({"generator": Payload(), "config": {}}, path)
    with pytest.raises(CheckpointError, match="refused for safety") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and not (tmp_path / "pwned").exists()


def test_truncated_and_foreign_checkpoints_name_the_file(reference, tmp_path):
    good = (reference / "checkpoints" / "last.pt").read_bytes()
    cases = {"cut.pt": good[: len(good) // 2], "png.pt": b"\x89PNG\r\n\x1a\n" + bytes(100), "empty.pt": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint") as err:
            load_checkpoint(tmp_path / name)
        assert name in str(err.value)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not a ganlab checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_resume_refuses_other_folders_foreign_checkpoints_and_config_changes(reference, tmp_path):
    out = ganlab("resume", str(tmp_path))
    assert out.returncode == 2 and "is not a ganlab run folder" in out.stderr
    changed = ganlab("resume", str(reference), "optim.lr=1e-3")
    assert changed.returncode == 2 and "optim.lr (checkpoint 0.0002, requested 0.001)" in changed.stderr
    other = tmp_path / "other"
    run_job(make_cfg("trainer.steps=3", "loss=hinge", "trainer.progress=false", *QUICK_METRICS), other)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(reference), str(copy)], check=True)
    (copy / "checkpoints" / "last.pt").write_bytes((other / "checkpoints" / "last.pt").read_bytes())
    foreign = ganlab("resume", str(copy))
    assert foreign.returncode == 2 and "was not written by this run's config" in foreign.stderr
    assert "loss.name (run 'bce_logits', checkpoint 'hinge')" in foreign.stderr


@pytest.mark.parametrize("full", [OSError(28, "No space left on device"),  # as a plain write says it
                                  RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter "
                                               "failed writing file data/3: file write failed")])  # as torch.save does
def test_a_full_disk_is_reported_and_the_last_good_checkpoint_stays(tmp_path, monkeypatch, full):
    import ganlab.record.run_folder as run_folder

    real_save, calls = torch.save, []

    def save_until_the_disk_is_full(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise full
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(run_folder.torch, "save", save_until_the_disk_is_full)
    cfg = make_cfg(*RUN, "metrics.enabled=false")
    with pytest.raises(RunFolderError) as err:
        run_job(cfg, tmp_path / "r")
    assert "last.pt" in str(err.value) and "ganlab resume" in str(err.value)
    assert ("Free disk space" in str(err.value)) == isinstance(full, OSError)  # a hint only where it is known
    monkeypatch.setattr(run_folder.torch, "save", real_save)
    kept = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert kept["epoch"] == 2 and not list((tmp_path / "r" / "checkpoints").glob(".*.tmp"))
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and str(full).split("]")[-1].strip()[:20] in summary["error"]


def test_a_completed_run_can_be_extended(reference, tmp_path):
    subprocess.run(["cp", "-r", str(reference), str(tmp_path / "run")], check=True)
    out = ganlab("resume", str(tmp_path / "run"), "trainer.epochs=6", "trainer.progress=false")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epochs_done"] == 6 and summary["status"] == "completed"
    assert (tmp_path / "run" / "samples" / "epoch_0006.png").exists()


def test_a_run_killed_after_its_last_checkpoint_resumes_without_repeating_its_end(reference, tmp_path):
    subprocess.run(["cp", "-r", str(reference), str(tmp_path / "run")], check=True)
    summary = tmp_path / "run" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "status": "running"}))  # as if killed
    assert ganlab("resume", str(tmp_path / "run")).returncode == 0
    assert_same_run(reference, tmp_path / "run")
    assert json.loads(summary.read_text())["status"] == "completed"


def test_a_run_saved_by_an_earlier_ganlab_resumes_with_the_later_settings_at_their_defaults(reference, tmp_path):
    """A checkpoint and .hydra/config.yaml without the settings added since (ema, R1, checkpoint_minutes)."""
    from omegaconf import OmegaConf

    folder = tmp_path / "run"
    subprocess.run(["cp", "-r", str(reference), str(folder)], check=True)
    later = {"trainer": ("checkpoint_minutes", "ema_decay", "ema_start"),
             "loss": ("r1_gamma", "r2_gamma", "reg_every")}
    state = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    config = OmegaConf.to_container(OmegaConf.load(folder / ".hydra" / "config.yaml"), resolve=True)
    for group, keys in later.items():
        for key in keys:
            del state["config"][group][key], config[group][key]
    torch.save(state, folder / "checkpoints" / "last.pt")
    OmegaConf.save(OmegaConf.create(config), folder / ".hydra" / "config.yaml")
    out = ganlab("resume", str(folder), "trainer.epochs=6")
    assert out.returncode == 0, out.stderr
    assert json.loads((folder / "summary.json").read_text())["epochs_done"] == 6


FORMAT1 = REPO / "tests" / "fixtures" / "run_format1"  # written by ganlab 34cff50 (2 epochs of a tiny ring run)


def test_a_checkpoint_of_the_first_format_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch):
    """Before format 4 a run drew z from torch's global stream, and its resume goes on doing so: it ends as an
    uninterrupted run that draws z there."""
    folder = tmp_path / "old"
    shutil.copytree(FORMAT1, folder)
    out = ganlab("resume", str(folder), "trainer.epochs=4")
    assert out.returncode == 0, out.stderr
    overrides = [o for o in (FORMAT1 / ".hydra" / "overrides.yaml").read_text().split("\n- ") if "epochs" not in o]
    monkeypatch.setattr("ganlab.training.job.noise_stream", lambda seed: None)  # the global stream, as then
    run_job(make_cfg(*[o.strip("- \n") for o in overrides], "trainer.epochs=4"), tmp_path / "new")
    old, new = (torch.load(p / "checkpoints" / "last.pt", weights_only=True) for p in (folder, tmp_path / "new"))
    assert old["format"] == new["format"] == CHECKPOINT_FORMAT and old["step"] == new["step"] == 32
    # The fixture's first half was trained on another processor, whose kernels round differently in
    # the last bit (measured: 6e-8 of a tensor's scale, Intel Xeon against the AMD EPYC that wrote it):
    # equal within float32 rounding, not bit for bit. Runs made and resumed on one machine stay
    # bit-exact (assert_same_run above).
    for part in ("generator", "discriminator"):
        for k in new[part]:
            torch.testing.assert_close(old[part][k], new[part][k], rtol=1e-5, atol=1e-6, msg=f"{part} {k}")
    old_q, new_q = (rows(p / "quality.csv") for p in (folder, tmp_path / "new"))
    assert [r.keys() for r in old_q] == [r.keys() for r in new_q]
    assert all(float(a[k]) == pytest.approx(float(b[k]), rel=1e-4) for a, b in zip(old_q, new_q) for k in a)
    assert (folder / "metrics.csv").read_text().count("\n") == (tmp_path / "new" / "metrics.csv").read_text().count("\n")


@pytest.mark.slow  # 25 s: a parallel sweep and a resume, each a process; the threads a sweep's job trains on are checked by test_experiments' failing-job sweep
def test_a_sweeps_job_resumes_with_the_threads_it_started_with_bit_for_bit(tmp_path):
    """A parallel sweep's job trains on cores // jobs torch threads; `ganlab resume` alone on the machine
    would take them all, and another thread count rounds differently."""
    sweep = tmp_path / "sweep"
    kept = [o for o in RUN if not o.startswith(("trainer.epochs", "trainer.threads", "metrics."))]
    out = run_cli("train", "-m", *kept, "metrics.enabled=false", "trainer.steps=6,12", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr[-2000:]
    short, long = (next(sweep.glob(f"*trainer.steps={n}*")) for n in (6, 12))
    assert "(1 torch threads" in (short / "train.log").read_text()  # 2 parallel jobs on 2 cores: one thread each (their saved config: test_experiments)
    out = run_cli("resume", str(short), "trainer.steps=12")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (short / "train.log").read_text().count("(1 torch threads") == 2
    ca, cb = (torch.load(p / "checkpoints" / "last.pt", weights_only=True) for p in (short, long))
    assert all(torch.equal(ca["generator"][k], cb["generator"][k]) for k in cb["generator"])


@pytest.mark.slow  # 30 s: a parallel sweep and its completion, each a process; the commands it runs: test_study
def test_a_sweeps_job_it_never_started_trains_as_the_sweep_would_have_bit_for_bit(tmp_path, monkeypatch):
    """`ganlab sweep --resume` trains a parallel sweep's never-started job as one of its parallel jobs (cores //
    jobs torch threads), so that it makes the numbers the uninterrupted sweep made; alone it took every core."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # as a user's shell: the threads are the sweep's choice
    sweep = tmp_path / "sweep"
    kept = [o for o in RUN if not o.startswith(("trainer.epochs", "trainer.threads", "metrics."))]
    # trainer.stack=1: each job its own process (auto may stack the two seeds, equal to solo only within rounding)
    out = run_cli("train", "-m", *kept, "metrics.enabled=false", "trainer.steps=6", "trainer.stack=1", "seed=1,2",
                  f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr[-2000:]
    job = next(sweep.glob("*seed=2*"))  # its name: metrics.enabled=False, as Hydra's sweeper spells it
    made = torch.load(job / "checkpoints" / "last.pt", weights_only=True)
    shutil.rmtree(job)  # as if the sweep had been stopped before it started this job
    out = run_cli("sweep", str(sweep), "--resume")
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(p.name for p in sweep.glob("*seed=*")) == [job.name.replace("seed=2", f"seed={s}") for s in (1, 2)]
    assert "(1 torch threads" in (job / "train.log").read_text()  # 2 jobs at a time on 2 cores, as in the sweep
    remade = torch.load(job / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(made["generator"][k], remade["generator"][k]) for k in made["generator"])


@pytest.mark.parametrize("written_as", [3, 2])
def test_a_run_that_ended_mid_epoch_extends_as_an_uninterrupted_run(tmp_path, written_as):
    """trainer.steps=10 of 8 steps an epoch ends in the second epoch; extended to 20 steps, it goes on with
    that epoch. A format-2 checkpoint counted the partial epoch as done; it is read as format 3."""
    from ganlab.training.resume import resume_run

    points = [*TINY_POINTS, "metrics.enabled=false"]
    run_job(make_cfg(*points, "trainer.steps=10"), tmp_path / "short")
    last = tmp_path / "short" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    assert (state["format"], state["epoch"], state["finished"]) == (CHECKPOINT_FORMAT, 1, True)
    assert json.loads((tmp_path / "short" / "summary.json").read_text())["epochs_done"] == 2  # the partial one
    if written_as == 2:
        torch.save({**state, "format": 2, "epoch": 2}, last)
    resume_run(tmp_path / "short", ["trainer.steps=20"])
    run_job(make_cfg(*points, "trainer.steps=20"), tmp_path / "long")
    short, long = (torch.load(p / "checkpoints" / "last.pt", weights_only=True) for p in (tmp_path / "short", tmp_path / "long"))
    assert (short["epoch"], short["step"]) == (long["epoch"], long["step"]) == (2, 20)
    assert all(torch.equal(short["generator"][k], long["generator"][k]) for k in long["generator"])
    assert sorted(p.name for p in (tmp_path / "short" / "samples").iterdir()) == \
        sorted(p.name for p in (tmp_path / "long" / "samples").iterdir())


def test_a_run_begun_in_format_4_resumes_drawing_its_dropout_masks_from_torchs_stream(tmp_path, monkeypatch):
    """Before format 5 dropout drew its masks from torch's global stream; such a run's resume goes on doing so,
    as an uninterrupted run that draws them there, where a run of today draws them from its own stream."""
    from ganlab.training.resume import resume_run
    from ganlab.training.step import GANStep

    tiny = [*TINY_POINTS, "discriminator.dropout=0.3", "trainer.checkpoint_every=1", "metrics.enabled=false"]
    run_job(make_cfg(*tiny), tmp_path / "today")
    own_stream = GANStep.draw_dropout_from
    monkeypatch.setattr(GANStep, "draw_dropout_from", lambda self, rng: own_stream(self, None))  # as in format 4
    run_job(make_cfg(*tiny), tmp_path / "then")
    run_job(make_cfg(*tiny, "trainer.epochs=1"), tmp_path / "old")
    last = tmp_path / "old" / "checkpoints" / "last.pt"
    torch.save({**torch.load(last, weights_only=True), "format": 4}, last)
    monkeypatch.undo()
    assert resume_run(tmp_path / "old", ["trainer.epochs=2"])["status"] == "completed"
    old, then, today = (torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=True)
                        for name in ("old", "then", "today"))
    assert old["global_dropout"] and "global_dropout" not in today
    assert all(torch.equal(old["discriminator"][k], then["discriminator"][k]) for k in then["discriminator"])
    assert not all(torch.equal(today["discriminator"][k], then["discriminator"][k]) for k in then["discriminator"])
