"""The seed studies as `+exp=` configs, and sweeps: parallel, failure-tolerant, summarised."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from ganlab import CONF_DIR
from ganlab.config import validate
from ganlab.config.validate import holds_images
from ganlab.record.sweep_table import write_sweep_table
from tests.conftest import QUICK_METRICS, experiment_script, ganlab, make_cfg, run_cli

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "exp").glob("*.yaml"))
# Studies that keep the image data they are composed with: those that pick no dataset of their own
# (read from the files, not composed: collecting the suite composes nothing).
IMAGE_EXPERIMENTS = [e for e in EXPERIMENTS if "override /data:" not in (CONF_DIR / "exp" / f"{e}.yaml").read_text()]
# Overrides every study accepts, to train each for a few steps.
QUICK = ["trainer.steps=2", "trainer.batch_size=16", "trainer.log_every=1", "generator.width=8",
         "discriminator.width=8", *QUICK_METRICS]
REPO = Path(__file__).resolve().parents[1]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sweep_dir(stdout: str) -> Path:
    return Path(stdout.strip().splitlines()[-1])


def test_the_seed_studies_are_all_there():
    assert set(EXPERIMENTS) >= {"baseline", "logits", "label_smoothing", "two_sided_smoothing", "d_dropout",
                                "deeper_generator", "ttur", "gelu_discriminator", "kernel4", "wgan_gp",
                                "mode_collapse_ring", "wgan_gp_ring"}


@pytest.mark.parametrize("exp", EXPERIMENTS)
def test_each_study_is_a_global_delta_with_a_one_line_comment(exp):
    lines = (CONF_DIR / "exp" / f"{exp}.yaml").read_text().splitlines()
    assert lines[0] == "# @package _global_"
    assert lines[1].startswith("# ") and len(lines[1]) > 30
    assert (REPO / "experiments" / exp / "README.md").is_file()


@pytest.mark.parametrize("data", ["digits", "mnist", "fashion_mnist", "cifar10"])
@pytest.mark.parametrize("exp", IMAGE_EXPERIMENTS)
def test_image_studies_compose_with_every_image_dataset(exp, data):
    cfg = make_cfg(f"+exp={exp}", f"data={data}")
    validate(cfg)
    assert holds_images(cfg.data) and cfg.data.name == data and cfg.name == f"{data}_{exp}"


def test_the_studies_that_pick_their_data_pick_points():
    for exp in set(EXPERIMENTS) - set(IMAGE_EXPERIMENTS):
        assert not holds_images(make_cfg(f"+exp={exp}").data), exp


def test_studies_change_what_their_comment_says():
    base = make_cfg("+exp=baseline")
    assert (base.loss.name, base.optim.lr, base.discriminator.activation) == ("bce", 1e-4, "relu")
    assert make_cfg("+exp=logits").loss.name == "bce_logits"
    assert make_cfg("+exp=label_smoothing").loss.real_target == 0.9
    two = make_cfg("+exp=two_sided_smoothing").loss
    assert (two.real_target, two.fake_target) == (0.98, 0.02)
    assert make_cfg("+exp=d_dropout").discriminator.dropout == 0.5
    assert make_cfg("+exp=deeper_generator").generator.depth > base.generator.depth
    ttur = make_cfg("+exp=ttur").optim
    assert (ttur.lr, ttur.d_lr_mult) == (2e-4, 0.5)
    assert make_cfg("+exp=gelu_discriminator").discriminator.activation == "gelu"
    assert make_cfg("+exp=kernel4").generator.kernel_size == 4 and base.generator.kernel_size == 3
    wgan = make_cfg("+exp=wgan_gp")
    assert (wgan.discriminator.norm, wgan.trainer.n_critic, list(wgan.optim.betas)) == ("layer", 5, [0.0, 0.9])
    assert make_cfg("+exp=mode_collapse_ring").data.name == "ring8"
    assert make_cfg("+exp=ema").trainer.ema_decay == 0.99 and base.trainer.ema_decay == 0.0
    assert make_cfg("+exp=r1").loss.r1_gamma == 1.0 and make_cfg("+exp=r1").loss.name == "bce_logits"
    small = make_cfg("+exp=diffaug")
    assert (small.augment.name, small.data.limit, base.augment.name) == ("diffaug", 300, "none")
    assert make_cfg("+exp=diffaug", "augment=ada").augment.adaptive
    assert make_cfg("+exp=label_smoothing", "loss.real_target=0.8").loss.real_target == 0.8
    reference, root = make_cfg("+exp=reference", "preset=cpu"), make_cfg("preset=cpu")
    assert reference.name.endswith("_reference") and {**reference, "name": root.name} == {**root}  # nothing else
    resnet = make_cfg("+exp=resnet")
    timed = make_cfg("+exp=resnet_equal_time")
    assert (timed.generator.name, timed.trainer.steps, make_cfg("preset=cpu").trainer.steps) == ("resnet", 694, None)
    assert (resnet.generator.name, resnet.discriminator.name, resnet.discriminator.norm) == ("resnet", "resnet", "spectral")
    r3gan = make_cfg("+exp=r3gan")
    assert (r3gan.loss.name, r3gan.loss.r1_gamma, r3gan.loss.r2_gamma, list(r3gan.optim.betas)) == ("rpgan", 1, 1, [0, 0.99])
    for exp, data, std in (("pacgan_ring", "ring8", 0.01), ("pacgan_grid", "grid25", 0.05)):
        pacgan = make_cfg(f"+exp={exp}")
        assert (pacgan.data.name, pacgan.data.std, pacgan.data.n_samples, pacgan.trainer.epochs) == (data, std, 100_000, 400)
        assert (pacgan.discriminator.name, pacgan.discriminator.width, pacgan.discriminator.pieces) == ("maxout", 200, 5)
        assert (pacgan.generator.width, pacgan.generator.depth, pacgan.generator.norm, pacgan.generator.z_dim) == (400, 4, "batch", 2)
        assert (pacgan.optim.lr, list(pacgan.optim.betas), pacgan.trainer.batch_size) == (1e-4, [0.8, 0.999], 100)
    conditional = make_cfg("+exp=conditional")
    assert (conditional.generator.conditioning, conditional.discriminator.conditioning) == ("cbn", "projection")


@pytest.mark.slow  # 24 s: every +exp trains 2 steps; the default suite composes each (test_config.py)
def test_every_study_trains_in_one_sweep(tmp_path):
    out = ganlab("train", "-m", "hydra/launcher=basic", "+exp=glob(*)", *QUICK, "metrics.enabled=false", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = read_csv(sweep_dir(out.stdout) / "sweep.csv")
    assert sorted(r["overrides"].split()[0] for r in rows) == sorted(f"+exp={e}" for e in EXPERIMENTS)
    assert {r["status"] for r in rows} == {"completed"} and all(r["steps"] == "2" for r in rows)


def test_a_failing_job_is_recorded_and_the_sweep_finishes_the_others(tmp_path):
    out = run_cli("train", "-m", "trainer.batch_size=16,5000", "seed=1,2", *QUICK[:1], "metrics.enabled=false",
                  cwd=tmp_path, timeout=600)
    assert out.returncode == 1
    assert "2 of 4 jobs failed" in out.stderr and "fewer than trainer.batch_size=5000" in out.stderr
    sweep = next((tmp_path / "outputs" / "sweeps").iterdir())
    rows = {r["job"]: r for r in read_csv(sweep / "sweep.csv")}
    assert set(rows) == {f"metrics.enabled=False,seed={seed},trainer.batch_size={batch},trainer.steps=2"
                         for seed in (1, 2) for batch in (16, 5000)}
    for job, row in rows.items():
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["status"] == row["status"] == ("failed" if "5000" in job else "completed")
        if row["status"] == "failed":
            assert "ConfigError" in summary["error"] and row["error"] == summary["error"]
        else:
            assert float(row["loss_d"]) > 0 and row["duration_s"] != ""
    printed = out.stdout.split("sweep table:")[0]
    # the work, said before it starts: trainer.stack=auto measured each pair of seeds (a stack of batch 16 may pay)
    assert re.search(r"trainer.stack=auto for 2 digits_\w+ jobs: stacks of 1 \(a solo G step takes [\d.]+ s on .+: "
                     r"compute-bound, no stack pays\)", printed)
    assert re.search(r"ganlab: 4 jobs(, \d at a time, on |.*; 2 of them train as stacks once their folders are made)",
                     printed)
    assert re.search(r"seed=1,trainer.batch_size=16,trainer.steps=2 +completed", printed)
    assert re.search(r"seed=2,trainer.batch_size=5000,trainer.steps=2 +failed", printed)
    # one job per core, one torch thread each, and the job's config says what ran: sharing the cores
    # changes no key of it (resumed with those threads: test_resume, -m slow)
    import torch
    from omegaconf import OmegaConf

    job = sweep / "metrics.enabled=False,seed=1,trainer.batch_size=16,trainer.steps=2"
    assert "(1 torch threads, precision 32)" in (job / "train.log").read_text()
    saved = OmegaConf.to_container(OmegaConf.load(job / ".hydra" / "config.yaml"), resolve=True)
    assert torch.load(job / "checkpoints" / "last.pt", weights_only=True)["config"] == saved
    assert saved["trainer"]["threads"] is None and saved["trainer"]["progress"] is True


def test_non_finite_loss_in_a_sequential_sweep_fails_only_that_job(tmp_path):
    out = ganlab("train", "-m", "hydra/launcher=basic", "optim.lr=1e-4,1e30", "loss=lsgan", *QUICK, cwd=tmp_path)
    sweep = next((tmp_path / "outputs" / "sweeps").iterdir())
    good, bad = read_csv(sweep / "sweep.csv")  # in launch order
    assert good["status"] == "completed" and "optim.lr=0.0001" in good["overrides"]
    assert out.returncode == 1 and bad["status"] == "diverged" and "non-finite" in bad["error"]
    assert "divergence" in bad["diagnoses"]


def test_the_sweep_table_is_rebuilt_from_job_folders_after_an_interruption(tmp_path):
    out = ganlab("train", "-m", "hydra/launcher=basic", "seed=1,2,3", *QUICK, "metrics.enabled=false", cwd=tmp_path)
    sweep = sweep_dir(out.stdout)
    # As if the sweep had been killed: one job still running, one never started.
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    running = jobs[1] / "summary.json"
    running.write_text(json.dumps({**json.loads(running.read_text()), "status": "running"}))
    (jobs[2] / "summary.json").unlink()
    (sweep / "sweep.csv").unlink()
    rows = write_sweep_table(sweep)
    assert [r["status"] for r in rows] == ["completed", "stopped", "not started"]  # its process is gone
    again = ganlab("sweep", str(sweep))
    assert again.returncode == 0 and "3 jobs, 2 not completed" in again.stdout
    assert [r["status"] for r in read_csv(sweep / "sweep.csv")] == ["completed", "stopped", "not started"]


def test_sweeps_run_through_submitit_local(tmp_path):
    out = run_cli("train", "-m", "hydra/launcher=submitit_local", "seed=1", *QUICK, "metrics.enabled=false",
                  cwd=tmp_path, timeout=600)  # one job: each is a process of its own (two: the SLURM test, -m slow)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = read_csv(sweep_dir(out.stdout) / "sweep.csv")
    assert [r["status"] for r in rows] == ["completed"]
    assert (sweep_dir(out.stdout) / ".submitit").is_dir()


def test_two_sweeps_started_into_one_folder_at_once_one_runs_and_the_other_writes_nothing(tmp_path):
    import subprocess
    import sys

    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "ganlab.cli", "train", "-m", "hydra/launcher=basic", *QUICK, "metrics.enabled=false",
               f"hydra.sweep.dir={sweep}"]
    both = [subprocess.Popen([*command, seeds], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for seeds in ("seed=1,2", "seed=2,1")]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in both]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "holds another sweep" in loser or "already holds a sweep" in loser
    assert len(loser.strip().splitlines()) == 1
    assert {r["status"] for r in read_csv(sweep / "sweep.csv")} == {"completed"}


def _start_sweep(tmp_path: Path, sweep: Path, seeds: str):
    import subprocess
    import sys
    import time

    # trainer.stack=1: the launcher's own workers, each job a process (a sweep of stacks: tests/test_stack.py)
    command = [sys.executable, "-m", "ganlab.cli", "train", "-m", *QUICK[1:], "trainer.epochs=12", f"seed={seeds}",
               "metrics.enabled=false", "trainer.stack=1", f"hydra.sweep.dir={sweep}"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own process group, as a terminal gives it
    deadline = time.time() + 180
    while len(list(sweep.glob("*/metrics.csv"))) < 2:
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.2)
    return process


def _group_gone(pgid: int, seconds: float = 30) -> bool:
    import os
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow  # 110 s: three 1,080-step jobs trained to their end; the default suite's SIGTERM test below stops the workers too
def test_ctrl_c_on_a_parallel_sweep_says_one_line_and_the_sweep_completes_in_place(tmp_path):
    import os
    import signal

    sweep = tmp_path / "sweep"
    process = _start_sweep(tmp_path, sweep, "1,2,3")
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole group
    _, err = process.communicate(timeout=180)
    assert process.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == (f"ganlab: sweep interrupted (2 interrupted, 1 not started); continue it "
                                            f"with: ganlab sweep {sweep} --resume")
    assert _group_gone(process.pid)  # no worker outlives the sweep
    listed = run_cli("sweep", str(sweep))
    assert "not started" in listed.stdout and f"ganlab sweep {sweep} --resume" in listed.stdout
    done = run_cli("sweep", str(sweep), "--resume", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [r["status"] for r in read_csv(sweep / "sweep.csv")] == ["completed"] * 3


def test_sigterm_to_a_parallel_sweep_stops_its_workers_too(tmp_path):
    import os
    import signal

    sweep = tmp_path / "sweep"
    process = _start_sweep(tmp_path, sweep, "1,2")
    os.kill(process.pid, signal.SIGTERM)  # the sweep's process only, as a scheduler or `kill` sends it
    process.communicate(timeout=180)
    assert process.returncode == 130
    assert _group_gone(process.pid)
    assert {json.loads((job / "summary.json").read_text())["status"] for job in sweep.iterdir()
            if (job / "summary.json").exists()} == {"interrupted"}


def test_every_fashion_mnist_question_composes_and_validates_with_each_of_its_values():
    """experiments/fashion_questions.py runs for hours: a question whose config cannot be made fails here."""
    from ganlab.record.sweep_plan import swept_overrides

    questions = experiment_script("fashion_questions")
    assert len({q.name for q in questions.QUESTIONS}) == len(questions.QUESTIONS)
    for q in questions.QUESTIONS:
        assert (REPO / "experiments" / q.readme / "README.md").is_file(), q.name
        [(key, prefix, values)] = swept_overrides(list(q.overrides))
        fixed = [o for o in q.overrides if o.lstrip("+~").partition("=")[0] != key]
        assert len(values) == 2, q.name  # one change against its base
        for value in values:
            validate(make_cfg(*questions.COMMON, *fixed, f"{prefix}{key}={value}"))
