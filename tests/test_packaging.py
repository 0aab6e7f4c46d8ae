"""A wheel that works anywhere: the configs ship inside the package, and a user's own config
folder (--config-dir) adds groups and studies that compose with ganlab's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO, TINY_POINTS, ganlab

MY_EXP = """# @package _global_
# my study: a higher learning rate on the ring
optim:
  lr: 0.001
"""
MY_DATA = """defaults:
  - ring8
  - _self_
n_modes: 4
"""


def test_a_wheel_installed_elsewhere_trains_from_any_folder(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO),
                            "-w", str(wheels)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("ganlab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ganlab/conf/train.yaml" in names and "ganlab/conf/exp/baseline.yaml" in names
    assert "ganlab/conf/hydra/launcher/parallel.yaml" in names
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import ganlab; print(ganlab.CONF_DIR)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True)
    assert Path(where.stdout.strip()) == site / "ganlab" / "conf"  # the installed copy, not this checkout
    out = subprocess.run([sys.executable, "-m", "ganlab.cli", "train", *TINY_POINTS, "trainer.steps=4",
                          "+exp=wgan_gp_ring"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    run = Path(out.stdout.strip().splitlines()[-1])
    assert run.parent == elsewhere / "outputs" / "runs"
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_config_dir_adds_a_users_groups_and_studies_to_ganlabs(tmp_path):
    mine = tmp_path / "myconf"
    (mine / "exp").mkdir(parents=True)
    (mine / "data").mkdir()
    (mine / "exp" / "mine.yaml").write_text(MY_EXP)
    (mine / "data" / "ring4.yaml").write_text(MY_DATA)
    for flag in ("--config-dir", "-cd"):
        out = ganlab("train", flag, str(mine), "+exp=mine", "data=ring4", "generator=mlp", "discriminator=mlp",
                     "--cfg", "job", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "lr: 0.001" in out.stdout and "n_modes: 4" in out.stdout and "name: ring8" in out.stdout
    helped = ganlab("train", "--config-dir", str(mine), "--help", cwd=tmp_path)
    assert "exp: baseline" in helped.stdout and "mine" in helped.stdout.split("exp:")[1].splitlines()[0]
    assert "ring4" in helped.stdout.split("data:")[1].splitlines()[0]
    trained = ganlab("train", "--config-dir", str(mine), "+exp=mine", "data=ring4", *TINY_POINTS[1:],
                     "trainer.steps=4", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "n_modes: 4" in (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
