"""Your own GAN in the lab: networks, losses and optimisers of your own by import path (`_target_`),
checked on a dry batch before a folder is claimed; installed plug-ins; first-class runs in new
processes (sweep workers, resume, sample, compare)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import QUICK_METRICS, REPO, ganlab, run_cli

NETS = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class MyG(nn.Module):
    def __init__(self, z_dim=8, hidden=32, sample_shape=(1, 8, 8), out_scale=1.0, extra_dim=0):
        super().__init__()
        self.z_dim, self.shape, self.out_scale = z_dim, tuple(sample_shape), out_scale
        size = 1
        for s in self.shape:
            size *= s
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, size + extra_dim), nn.Tanh())

    def forward(self, z):
        out = self.net(z) * self.out_scale
        return out.view(len(z), *self.shape) if out.shape[1] == torch.Size(self.shape).numel() else out


class MyD(nn.Module):
    def __init__(self, hidden=32, sample_shape=(1, 8, 8), scores=1, nan=False):
        super().__init__()
        size = 1
        for s in sample_shape:
            size *= s
        self.nan = nan
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, scores))

    def forward(self, x):
        out = self.net(x)
        return out * float("nan") if self.nan else out


def stripes(n=320, side=8, scale=1.0):
    # images of horizontal or vertical stripes (two classes), in [-1, 1] times scale
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    phase = torch.rand(n, 1, generator=g) * 6.28
    line = torch.sin(torch.arange(side).float() + phase)
    x = torch.where(labels.view(n, 1, 1) == 0, line.unsqueeze(2).expand(n, side, side),
                    line.unsqueeze(1).expand(n, side, side))
    return (x.unsqueeze(1) * scale, labels)


class SigmoidD(MyD):
    # a D as most tutorials write it, ending in a Sigmoid
    def forward(self, x):
        return torch.sigmoid(super().forward(x))


class ConvG(nn.Module):
    # a DCGAN G as tutorials write it: it takes latents of shape (N, z_dim, 1, 1)
    def __init__(self, z_dim=8):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.ConvTranspose2d(z_dim, 1, 8), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class BrokenG(nn.Module):
    def __init__(self, z_dim=8):
        super().__init__()
        raise RuntimeError("my G cannot be built")


class MyHinge:
    \"\"\"A loss that is not a GANLoss: d_loss and g_loss are all it needs.\"\"\"
    def __init__(self, margin=1.0):
        self.margin = margin

    def d_loss(self, real, fake):
        return F.relu(self.margin - real).mean() + F.relu(self.margin + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()
"""

SMALL = ["trainer.epochs=2", "trainer.batch_size=32", "trainer.log_every=5", "trainer.progress=false",
         "trainer.threads=1", "metrics.every=1", *QUICK_METRICS]


def project(tmp_path: Path, **files: str) -> tuple[Path, str]:
    """A user's folder: a module of their own (a fresh name, so no test sees another's) and a
    --config-dir whose files name its classes; `files` maps group/option to YAML text, where MOD
    stands for the module's name."""
    module = f"nets_{uuid.uuid4().hex[:8]}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / f"{module}.py").write_text(NETS)
    for name, text in files.items():
        path = tmp_path / "myconf" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).replace("MOD", module))
    return tmp_path / "myconf", module


OWN = {"generator/mine": "_target_: MOD.MyG\nhidden: 32\n", "discriminator/mine": "_target_: MOD.MyD\n",
       "loss/mine": "_target_: MOD.MyHinge\nmargin: 0.5\n"}
CHOSEN = ["generator=mine", "discriminator=mine", "loss=mine"]


def test_own_networks_and_loss_train_in_a_sweep_resume_in_a_new_process_and_sample(tmp_path):
    conf, module = project(tmp_path, **OWN)
    sweep = tmp_path / "sweep"
    out = run_cli("train", "-m", "--config-dir", str(conf), *CHOSEN, *SMALL, "seed=1,2", f"hydra.sweep.dir={sweep}",
                  cwd=tmp_path)  # the joblib workers import the user's module from the current folder
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = sorted(p for p in sweep.iterdir() if (p / "summary.json").is_file())
    assert len(jobs) == 2 and all(json.loads((j / "summary.json").read_text())["status"] == "completed" for j in jobs)
    saved = OmegaConf.load(jobs[0] / ".hydra" / "config.yaml")
    assert saved.generator == {"_target_": f"{module}.MyG", "hidden": 32} and saved.loss.margin == 0.5
    checkpoint = torch.load(jobs[0] / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["config"]["generator"]["_target_"] == f"{module}.MyG"
    assert (jobs[0] / "metrics.csv").read_text().splitlines()[0].startswith("step")

    resumed = run_cli("resume", str(jobs[0]), "trainer.epochs=3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((jobs[0] / "summary.json").read_text())["epochs_done"] == 3
    sampled = ganlab("sample", str(jobs[0]), "--n", "16", "--out", str(tmp_path / "s.png"), cwd=tmp_path)
    assert sampled.returncode == 0 and (tmp_path / "s.png").is_file()
    compared = ganlab("compare", str(sweep), "--json", cwd=tmp_path)
    assert compared.returncode == 0 and json.loads(compared.stdout)["runs"] == 2

    # from a folder where the module cannot be imported: one line that names it and the fix
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lost = run_cli("sample", str(jobs[0]), "--n", "4", "--out", str(elsewhere / "x.png"), cwd=elsewhere)
    assert lost.returncode == 2 and "Traceback" not in lost.stderr
    assert f"generator._target_={module}.MyG cannot be imported" in lost.stderr and "PYTHONPATH" in lost.stderr


BROKEN = [
    ({"generator/mine": "_target_: MOD.MyG\nwidth: 64\n"},
     "generator._target_=MOD.MyG does not take these arguments (got an unexpected keyword argument 'width')"),
    ({"generator/mine": "_target_: MOD.MyG\nextra_dim: 3\n"},
     "generator MOD.MyG: for 4 latents of size 8 it should return a tensor of shape (4, 1, 8, 8)"),
    ({"generator/mine": "_target_: MOD.MyG\nout_scale: 3.0\n"}, "images live in [-1, 1] (end G with a tanh)"),
    ({"discriminator/mine": "_target_: MOD.MyD\nscores: 2\n"},
     "discriminator MOD.MyD: for 4 real samples it should return one score each, shape (4,) or (4, 1), but "
     "returned (4, 2)"),
    ({"discriminator/mine": "_target_: MOD.MyD\nnan: true\n"}, "discriminator MOD.MyD returned non-finite values"),
    ({"loss/mine": "_target_: MOD.MyD\n"}, "loss MOD.MyD has no d_loss or g_loss"),
    ({"loss/mine": "_target_: MOD.MyHinge\nmargin: x\n"}, "loss d_loss of MOD.MyHinge failed on a dry batch of 4 (TypeError"),
    ({"generator/mine": "_target_: MOD.NoSuchG\n"}, "generator._target_=MOD.NoSuchG cannot be imported"),
    ({"generator/mine": "_target_: MOD.ConvG\n"},
     "ganlab gives G latents of shape (N, z_dim), here (4, 8): a G built for (N, z_dim, 1, 1) begins its forward "
     "with z = z.view(len(z), -1, 1, 1)"),
    ({"generator/mine": "_target_: MOD.BrokenG\n"},
     "generator._target_=MOD.BrokenG failed while it was built (RuntimeError: my G cannot be built)"),
    # a _target_ that is not a part of its kind is refused before it is called (nothing below may run)
    ({"generator/mine": "_target_: os.system\ncommand: touch PWNED\n"},
     "generator._target_=os.system is the builtin function posix.system, not a torch.nn.Module subclass; refused "
     "before calling it"),
    ({"loss/mine": "_target_: subprocess.Popen\nargs: [touch, PWNED]\n"},
     "loss._target_=subprocess.Popen is the class subprocess.Popen, not a loss class of yours"),
]


@pytest.mark.parametrize("files,message", BROKEN, ids=["arguments", "shape", "range", "scores", "nan", "loss", "loss-fails",
                                                       "import", "4d-latents", "init-fails", "os.system", "Popen"])
def test_a_part_that_breaks_its_contract_gets_one_line_and_leaves_no_folder(tmp_path, files, message):
    conf, module = project(tmp_path, **{**OWN, **files})
    run = tmp_path / "run"
    out = ganlab("train", "--config-dir", str(conf), *CHOSEN, *SMALL, f"hydra.run.dir={run}", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message.replace("MOD", module) in out.stderr and "Traceback" not in out.stderr
    assert not run.exists() and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("part, node, message", [
    ("data", "_target_: shutil.rmtree\npath: VICTIM\n",
     "data._target_=shutil.rmtree is the function shutil.rmtree, not a function of yours"),
    ("optim", "_target_: os.system\ncommand: touch PWNED\n",
     "optim._target_=os.system is the builtin function posix.system, not a torch.optim.Optimizer subclass"),
])
def test_a_config_naming_code_that_is_no_part_is_refused_before_it_runs(tmp_path, part, node, message):
    victim = tmp_path / "victim"
    victim.mkdir()
    conf, _ = project(tmp_path, **{f"{part}/mine": node.replace("VICTIM", str(victim))})
    out = ganlab("train", "--config-dir", str(conf), f"{part}=mine", *SMALL, f"hydra.run.dir={tmp_path / 'run'}",
                 cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert victim.is_dir() and not (tmp_path / "PWNED").exists() and not (tmp_path / "run").exists()


def test_a_run_folder_naming_code_that_is_no_part_runs_none_of_it(run_copy, tmp_path):
    """A run folder from elsewhere whose checkpoints and .hydra/config.yaml name os.system as the
    generator (plain data: it loads with weights_only): sample, eval and resume refuse it before calling it."""
    from tests.conftest import TINY

    run = run_copy(*TINY)
    evil = {"_target_": "os.system", "command": f"touch {tmp_path / 'PWNED'}"}
    for checkpoint in (run / "checkpoints").glob("*.pt"):
        state = torch.load(checkpoint, weights_only=True)
        state["config"]["generator"] = evil
        torch.save(state, checkpoint)
    (run / ".hydra").mkdir(exist_ok=True)  # as `ganlab train` writes it (the session's run was trained in-process)
    OmegaConf.save(OmegaConf.create(state["config"]), run / ".hydra" / "config.yaml")
    for command in (["sample", str(run), "--out", str(tmp_path / "s.png")], ["eval", str(run)],
                    ["resume", str(run), "trainer.epochs=3"]):
        out = ganlab(*command, cwd=tmp_path)
        assert out.returncode == 2 and "generator._target_=os.system is the builtin function posix.system, not a " \
            "torch.nn.Module subclass" in out.stderr, (command, out.stderr)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "s.png").exists()


def test_a_discriminator_ending_in_a_sigmoid_is_warned_of_in_one_line(tmp_path):
    conf, module = project(tmp_path, **{**OWN, "discriminator/mine": "_target_: MOD.SigmoidD\n"})
    out = ganlab("train", "--config-dir", str(conf), "generator=mine", "discriminator=mine", *SMALL, "trainer.steps=2",
                 "metrics.enabled=false", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    warned = [line for line in (out.stdout + out.stderr + (tmp_path / "run" / "train.log").read_text()).splitlines()
              if "does it end in a Sigmoid?" in line]
    assert warned and f"discriminator {module}.SigmoidD: every score of a dry batch lies in (0, 1)" in warned[0]


def test_an_optimiser_of_ones_own_gets_the_parameters_and_the_learning_rate(tmp_path):
    conf, _ = project(tmp_path, **{"optim/sgd": "_target_: torch.optim.SGD\nmomentum: 0.9\nlr: 0.01\n"})
    run = tmp_path / "run"
    out = ganlab("train", "--config-dir", str(conf), "optim=sgd", "+optim.g_lr_mult=2", *SMALL,
                 "generator.width=8", "discriminator.width=8", "trainer.steps=4", f"hydra.run.dir={run}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    d_group, g_group = state["opt_d"]["param_groups"][0], state["opt_g"]["param_groups"][0]
    assert (d_group["lr"], g_group["lr"], g_group["momentum"]) == (0.01, 0.02, 0.9)


PLUGIN = REPO / "examples" / "plugin"  # the plug-in the README installs


def test_an_installed_plugin_is_seen_by_every_ganlab_process(tmp_path):
    """A package with a `ganlab.parts` entry point, installed onto the path (its dist-info holds the
    entry point, as pip writes it): its loss is listed, composed with its schema and validated."""
    site = tmp_path / "site"
    shutil.copytree(PLUGIN / "ganlab_softplus", site / "ganlab_softplus")
    info = site / "ganlab_softplus-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ganlab-softplus\nVersion: 0.1\n")
    declared = (PLUGIN / "pyproject.toml").read_text().split('[project.entry-points."ganlab.parts"]')[1].strip()
    declared = declared.replace('"', '')  # TOML's quotes; entry_points.txt has none
    (info / "entry_points.txt").write_text(f"[ganlab.parts]\n{declared}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    cli = [sys.executable, "-m", "ganlab.cli"]

    def run(*args):
        import subprocess

        return subprocess.run([*cli, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)

    assert "softplus_hinge" in next(line for line in run("train", "--help").stdout.splitlines()
                                    if line.startswith("loss:"))
    out = run("train", "loss=softplus_hinge", "loss.margin=0.5", *SMALL, "generator.width=8",
              "discriminator.width=8", "trainer.steps=4", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "margin: 0.5" in (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    bad = run("train", "loss=softplus_hinge", "loss.margin=-1", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 2 and "loss.margin=-1.0 must be > 0" in bad.stderr and not (tmp_path / "bad").exists()
    typo = run("train", "loss=softplus_hinge", "loss.margn=1", f"hydra.run.dir={tmp_path / 'typo'}")
    assert typo.returncode == 2 and "margin" in typo.stderr


def test_the_readmes_own_gan_example_trains(tmp_path):
    out = ganlab("train", "--config-dir", "myconf", *CHOSEN, *SMALL, f"hydra.run.dir={tmp_path / 'run'}",
                 cwd=REPO / "examples" / "own_gan")
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"


def test_data_of_ones_own_is_trained_scored_and_sampled(tmp_path):
    conf, module = project(tmp_path, **OWN, **{"data/stripes": "_target_: MOD.stripes\nn: 320\n"})
    run = tmp_path / "run"
    out = ganlab("train", "--config-dir", str(conf), *CHOSEN, "data=stripes", *SMALL, f"hydra.run.dir={run}",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["name"] == "stripes_MyHinge" and summary["quality"]["best"]["score"] > 0  # its own yardstick
    sampled = ganlab("sample", str(run), "--n", "8", "--out", str(tmp_path / "s.npz"), cwd=tmp_path)
    assert sampled.returncode == 0 and __import__("numpy").load(tmp_path / "s.npz")["images"].shape == (8, 8, 8, 1)
    conf, module = project(tmp_path / "bad", **OWN, **{"data/stripes": "_target_: MOD.stripes\nscale: 3\n"})
    bad = ganlab("train", "--config-dir", str(conf), *CHOSEN, "data=stripes", *SMALL, f"hydra.run.dir={run}2",
                 cwd=tmp_path / "bad")
    assert bad.returncode == 2 and "data stripes: its images should be finite and in [-1, 1]" in bad.stderr
    assert not (tmp_path / "run2").exists()
