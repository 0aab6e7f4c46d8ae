"""Tiny real training runs: every loss on images and points, the run folder, seeding, failures."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from PIL import Image

from ganlab.config import ConfigError
from ganlab.parts.losses import WGANGPLoss
from ganlab.parts.registry import LOSSES
from ganlab.record.run_folder import RunFolderError
from ganlab.training.job import run_job
from tests.conftest import TINY, TINY_POINTS, make_cfg

LOSSES = LOSSES.names()
COLUMNS = ["step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "acc_real", "acc_fake", "grad_norm_d",
           "grad_norm_g", "gp", "wasserstein", "r1", "r2", "class_loss", "lr_d", "lr_g", "time_s", "aug_p", "ada_rt"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def loss_overrides(loss):
    return [f"loss={loss}"] + (["discriminator.norm=layer", "trainer.n_critic=2"] if loss == "wgan_gp" else [])


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_dcgan_on_digits_with_finite_numbers(tmp_path, loss):
    summary = run_job(make_cfg(*TINY, *loss_overrides(loss)), tmp_path / "run")
    assert summary["status"] == "completed"
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert rows and list(rows[0]) == COLUMNS
    for row in rows:
        assert all(math.isfinite(float(row[k])) for k in COLUMNS if row[k] != "")
        assert 0 <= float(row["acc_real"]) <= 1 and 0 <= float(row["acc_fake"]) <= 1
    if loss in ("bce", "bce_logits", "label_smoothing"):
        assert all(0 <= float(r["d_real"]) <= 1 for r in rows)  # probabilities for the BCE family
    assert (rows[0]["gp"] != "") == (loss == "wgan_gp")


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_mlp_on_ring8_with_finite_numbers(tmp_path, loss):
    summary = run_job(make_cfg(*TINY_POINTS, f"loss={loss}"), tmp_path / "run")
    assert summary["status"] == "completed"
    assert all(math.isfinite(v) for k, v in summary["final"].items() if isinstance(v, float))


def test_run_folder_holds_every_artifact(tmp_path):
    run = tmp_path / "run"
    cfg = make_cfg(*TINY, "trainer.epochs=3", "trainer.checkpoint_every=2")
    summary = run_job(cfg, run)
    steps_per_epoch = 480 // 16  # TINY's data.limit
    assert summary["steps_done"] == 3 * steps_per_epoch and summary["epochs_done"] == 3
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png", "epoch_0003.png"]
    grid = Image.open(run / "samples" / "epoch_0003.png")
    assert grid.width >= 8 * 32  # 64 enlarged 8x8 images
    assert Image.open(run / "history.png").height > 400

    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["final"]["step"] == summary["steps_done"]
    assert on_disk["duration_s"] > 0 and on_disk["last_samples"] == "samples/epoch_0003.png"

    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert set(ckpt) >= {"generator", "discriminator", "opt_g", "opt_d", "step", "epoch", "config", "batches",
                         "recorder", "evaluation"}
    assert ckpt["step"] == summary["steps_done"] and ckpt["config"]["loss"]["name"] == "bce_logits"
    assert ckpt["evaluation"]["fixed_noise"].shape == (64, cfg.generator.z_dim)
    rows = read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == sorted({*range(2, 3 * steps_per_epoch + 1, 2), 3 * steps_per_epoch})


def test_points_runs_plot_scatter_against_the_data(tmp_path):
    run_job(make_cfg(*TINY_POINTS, "data=gauss1d"), tmp_path / "one")
    run_job(make_cfg(*TINY_POINTS), tmp_path / "two")
    for run in ("one", "two"):
        assert Image.open(tmp_path / run / "samples" / "epoch_0002.png").width >= 400


def test_same_seed_and_config_give_the_same_numbers_on_cpu(tmp_path):
    cfg = make_cfg(*TINY, "trainer.steps=12", "seed=7")
    run_job(cfg, tmp_path / "a")
    run_job(cfg, tmp_path / "b")
    run_job(make_cfg(*TINY, "trainer.steps=12", "seed=8"), tmp_path / "c")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    a, b, c = (strip(read_csv(tmp_path / x / "metrics.csv")) for x in "abc")
    assert a == b and a != c
    wa, wb = (torch.load(tmp_path / x / "checkpoints" / "last.pt", weights_only=True)["generator"] for x in "ab")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_steps_limit_and_n_critic_d_steps_per_g_step(tmp_path):
    summary = run_job(make_cfg(*TINY, "trainer.steps=5", "trainer.n_critic=3", "trainer.log_every=1"), tmp_path / "r")
    assert summary["steps_done"] == 5 and summary["total_steps"] == 5
    opt_d = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["opt_d"]
    assert int(opt_d["state"][0]["step"]) == 15  # Adam counted 3 D updates per G step


def test_lr_multipliers_reach_the_optimisers(tmp_path):
    run_job(make_cfg(*TINY, "trainer.steps=2", "optim.lr=1e-3", "optim.d_lr_mult=0.5", "optim.g_lr_mult=2"),
          tmp_path / "r")
    row = read_csv(tmp_path / "r" / "metrics.csv")[-1]
    assert float(row["lr_d"]) == pytest.approx(5e-4) and float(row["lr_g"]) == pytest.approx(2e-3)


def test_a_new_run_never_writes_into_an_existing_run(tmp_path):
    run_job(make_cfg(*TINY, "trainer.steps=2"), tmp_path / "r")
    before = (tmp_path / "r" / "metrics.csv").read_bytes()
    with pytest.raises(RunFolderError, match="already holds a run"):
        run_job(make_cfg(*TINY, "trainer.steps=2"), tmp_path / "r")
    assert (tmp_path / "r" / "metrics.csv").read_bytes() == before


def test_unwritable_run_folder_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(RunFolderError, match="cannot write the run folder"):
        run_job(make_cfg(*TINY), tmp_path / "file" / "run")


def test_non_finite_loss_stops_the_run_cleanly_as_diverged_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls, real_loss = [], WGANGPLoss.g_loss

    def nan_from_the_fourth_step(self, fake):
        calls.append(1)  # the first call is the contract check's dry batch, before training
        return real_loss(self, fake) * (float("nan") if len(calls) >= 5 else 1.0)

    monkeypatch.setattr(WGANGPLoss, "g_loss", nan_from_the_fourth_step)
    summary = run_job(make_cfg(*TINY_POINTS, "loss=wgan_gp", "trainer.epochs=8", "trainer.checkpoint_every=1",
                             "trainer.log_every=1"), tmp_path / "r")
    on_disk = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == on_disk["status"] == "diverged" and "non-finite" in on_disk["error"]
    assert on_disk["steps_done"] == 4 and on_disk["final"]["step"] == 4
    (diagnosis,) = [d for d in on_disk["diagnoses"] if d["kind"] == "divergence"]
    assert "last good checkpoint: checkpoints/last.pt" in diagnosis["evidence"] and "optim.lr" in diagnosis["suggestion"]
    kept = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert kept["step"] == 3 and all(torch.isfinite(w).all() for w in kept["generator"].values())


def test_too_little_data_for_one_batch_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="fewer than trainer.batch_size=512"):
        run_job(make_cfg(*TINY_POINTS, "data.n_samples=100", "trainer.batch_size=512"), tmp_path / "r")


def test_ctrl_c_marks_the_run_interrupted_and_keeps_what_was_logged(tmp_path, monkeypatch):
    from ganlab.training.step import GANStep

    real_step, calls = GANStep.__call__, []

    def step_then_interrupt(self, reals, step):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(self, reals, step)

    monkeypatch.setattr(GANStep, "__call__", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_job(make_cfg(*TINY), tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps_done"] == 4
    assert [r["step"] for r in read_csv(tmp_path / "r" / "metrics.csv")] == ["2", "4"]


@pytest.mark.parametrize("speedup", ["trainer.precision=bf16", "trainer.channels_last=true"])
def test_opt_in_speedups_train_with_finite_numbers(tmp_path, speedup):
    summary = run_job(make_cfg(*TINY, speedup), tmp_path / "r")
    assert summary["status"] == "completed"
    assert all(math.isfinite(v) for k, v in summary["final"].items() if isinstance(v, float))


@pytest.mark.slow
def test_torch_compile_trains_and_checkpoints_plain_weights(tmp_path):
    run_job(make_cfg(*TINY, "trainer.compile=true"), tmp_path / "r")
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert not any(k.startswith("_orig_mod") for k in state["generator"])


def test_fp16_needs_cuda_and_no_gradient_penalty(tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="trainer.precision=fp16 needs a CUDA GPU"):
            run_job(make_cfg(*TINY, "trainer.precision=fp16"), tmp_path / "r")
        assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="loss=wgan_gp with trainer.precision=fp16"):
        run_job(make_cfg(*TINY, "loss=wgan_gp", "discriminator.norm=layer", "trainer.precision=fp16"), tmp_path / "w")


def test_each_epoch_visits_every_sample_once_in_a_seeded_order(tmp_path):
    from ganlab.parts.data import load_dataset
    from ganlab.training.batches import BatchStream

    cfg = make_cfg(*TINY_POINTS, "data.n_samples=100")
    data = load_dataset(cfg.data)
    stream = BatchStream(data, batch_size=32, n_critic=1, seed=0)
    batches = []
    for _ in range(stream.steps_left()):
        group = stream.next()
        batches += [x for x, y in group]
        assert all(y is None for x, y in group)  # unlabelled points
    assert [len(b) for b in batches] == [32, 32, 32] and stream.steps_left() == 0  # full batches only
    assert len(torch.unique(torch.cat(batches), dim=0)) == 96
    assert torch.equal(BatchStream(data, batch_size=32, n_critic=1, seed=0).next()[0][0], batches[0])
    assert not torch.equal(BatchStream(data, batch_size=32, n_critic=1, seed=1).next()[0][0], batches[0])



def test_labelled_batches_carry_the_classes_of_their_images():
    from ganlab.parts.data import load_dataset
    from ganlab.training.batches import BatchStream

    data = load_dataset(make_cfg().data)
    (x, y), = BatchStream(data, batch_size=16, n_critic=1, seed=0, labelled=True).next()
    rows = [int(torch.nonzero((data.x == image).flatten(1).all(1))[0]) for image in x]
    assert y.tolist() == data.labels[rows].tolist()


def test_precision_auto_is_bf16_exactly_where_the_cpu_has_bf16_instructions(tmp_path, monkeypatch):
    summary = run_job(make_cfg(*TINY, "trainer.steps=2", "trainer.precision=auto"), tmp_path / "r")
    has_bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert summary["precision"] == ("bf16" if has_bf16 else "32")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)  # the fallback
    assert run_job(make_cfg(*TINY, "trainer.steps=2", "trainer.precision=auto"), tmp_path / "s")["precision"] == "32"


def test_the_best_epoch_says_which_other_evaluations_are_within_noise_of_it(tmp_path):
    from ganlab.record.catalog import RunRecord
    from ganlab.record.run_folder import RunFolder
    from ganlab.training.job import tied_with_best

    (tmp_path / "quality.csv").write_text("epoch,step,fd,fd_se\n1,10,9.0,0.1\n2,20,2.0,0.2\n3,30,2.3,0.2\n4,40,2.9,0.1\n")
    best = {"metric": "fd", "epoch": 2, "score": 2.0, "scores": {"fd": 2.0, "fd_se": 0.2}}
    ties = tied_with_best(RunFolder(tmp_path), best)
    assert ties == [3.0]  # 2.3 - 2.0 <= 2 x hypot(0.2, 0.2) = 0.57; 2.9 is beyond it
    summary = {"status": "completed", "quality": {"metric": "fd", "best": best, "tied_with_best": [3.0, 5.0]}}
    assert "at epoch 2 (2 other evaluations, epochs 3-5, within noise of it)" in RunRecord(tmp_path, None, [], summary).headline()


def test_a_run_says_what_its_work_will_cost_before_and_as_it_goes(tmp_path, caplog):
    from ganlab.training.cost import processor

    caplog.set_level("INFO", logger="ganlab")
    run_job(make_cfg(*TINY), tmp_path / "run")  # 2 epochs of 30 G steps, an evaluation after each
    said = caplog.text
    assert f"the work: 60 G steps (an epoch is 30 G steps), 2 quality evaluations, on {processor()}" in said
    assert "of G steps left (" in said and "ms each), plus 2 evaluations (timed at the first)" in said
    assert "left: G steps at" in said and "1 evaluation at" in said  # after the first evaluation, timed
    assert "bf16" in processor().lower()  # the processor line says which bf16 instructions it has, if any


def test_evaluations_are_counted_in_g_steps_whatever_n_critic(tmp_path):
    """With n_critic 5 an epoch of the data holds a fifth of the G steps: metrics.every=1 evaluates every 5
    epochs, as often per G step as a run with n_critic 1."""
    import csv

    from tests.conftest import TINY_POINTS

    from ganlab.training.cost import evaluations

    run_job(make_cfg(*TINY_POINTS, "loss=wgan_gp", "trainer.epochs=10"), tmp_path / "wgan")
    with open(tmp_path / "wgan" / "quality.csv") as f:
        assert [int(float(r["epoch"])) for r in csv.DictReader(f)] == [5, 10]
    assert evaluations(10, 1, 5) == 2  # what the run said it would make: every 5 epochs, the 10th the last
    assert evaluations(25, 10, 1) == 3  # epochs 1 and 2, and the end of the partial third


def test_a_gan_built_by_hand_trains_through_the_trainer_with_no_config(tmp_path):
    """The Trainer takes objects, as minGPT's does: networks, a loss, optimisers, data and the loop's parts
    made here, no Hydra and no config; it writes the run folder a `ganlab train` run writes."""
    import torch.nn as nn

    from ganlab.parts.data import Dataset
    from ganlab.parts.losses import BCEWithLogitsLoss
    from ganlab.record.run_folder import RunFolder
    from ganlab.training.batches import BatchStream
    from ganlab.training.diagnose import Diagnostician
    from ganlab.training.scorekeeper import Scorekeeper
    from ganlab.training.metrics_log import MetricsLog
    from ganlab.training.step import GAN, GANStep
    from ganlab.training.trainer import Parts, Schedule, Trainer, steps_per_epoch

    class G(nn.Module):
        z_dim = 4

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

        def forward(self, z):
            return self.net(z)

    torch.manual_seed(0)
    g, d = G(), nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    gan = GAN(g, d, BCEWithLogitsLoss(), torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3))
    data = Dataset("two blobs", torch.cat([torch.randn(128, 2) * 0.1 + 1, torch.randn(128, 2) * 0.1 - 1]))
    run = RunFolder(tmp_path / "run").create()
    per_epoch = steps_per_epoch(len(data), batch_size=32, n_critic=1)
    schedule = Schedule(total_steps=3 * per_epoch, steps_per_epoch=per_epoch, log_every=4, sample_every=1,
                        evaluate_every=1, checkpoint_every=1, checkpoint_minutes=5.0)
    diagnostician, step = Diagnostician(), GANStep(gan, torch.device("cpu"))
    parts = Parts(gan, BatchStream(data, 32, 1, seed=0), step, MetricsLog(run, step, diagnostician, None, per_epoch, "by hand"),
                  Scorekeeper(None, run, data, g, None, diagnostician, None, seed=0, title="by hand", n_grid=16, n_samples=64),
                  diagnostician)
    trainer = Trainer(parts, schedule, run, config={"made": "by hand"}, sample_shape=data.sample_shape)
    trainer.fit()
    run.release()
    assert (trainer.step, trainer.epoch) == (24, 3)
    assert len(run.read_columns(run.metrics_csv)["step"]) == 6  # a row every 4 of the 24 G steps
    assert sorted(p.name for p in run.samples.glob("*.png")) == ["epoch_0001.png", "epoch_0002.png", "epoch_0003.png"]
    state = torch.load(run.checkpoints / "last.pt", weights_only=True)
    assert state["config"] == {"made": "by hand"} and state["step"] == 24 and state["finished"]
