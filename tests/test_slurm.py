"""Sweeps on a real SLURM cluster: a one-node cluster from Debian's slurm-wlm and munge, started by
tools/slurm_up.sh, runs a two-job sweep through Hydra's submitit_slurm launcher."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess

import pytest

from tests.conftest import REPO, TINY_POINTS, run_cli


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory) -> str:
    if os.geteuid() != 0:
        pytest.skip("starting munged, slurmctld and slurmd needs root")
    state = tmp_path_factory.mktemp("slurm")
    up = subprocess.run([str(REPO / "tools" / "slurm_up.sh"), str(state)], capture_output=True, text=True, timeout=300)
    if up.returncode != 0:
        pytest.skip(f"a SLURM cluster cannot be started here: {up.stderr.strip().splitlines()[-1:]}")
    yield up.stdout.strip().split("=", 1)[1]
    subprocess.run([str(REPO / "tools" / "slurm_down.sh")])


@pytest.mark.slow  # 35 s: starts munged, slurmctld and slurmd; submitit's launcher is checked by submitit_local in the default suite
def test_a_sweep_runs_as_slurm_jobs_and_ends_with_its_table(slurm_conf, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", slurm_conf)
    sweep = tmp_path / "sweep"
    out = run_cli("train", "-m", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=debug",
                  "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=10", *TINY_POINTS, "trainer.steps=4",
                  "seed=1,2", f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())
    assert [p.name.split("seed=")[1].split(",")[0] for p in jobs] == ["1", "2"]
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["steps_done"] == 4
    with open(sweep / "sweep.csv", newline="") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["completed", "completed"]
    # SLURM ran them: one log per task of a SLURM job array (JOBID_TASK), written on the node
    logs = sorted((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2 and all(re.fullmatch(r"\d+_\d", log.parent.name) for log in logs)
    texts = [(log.parent / log.name.replace(".out", ".err")).read_text() + log.read_text() for log in logs]
    assert all(f"JobEnvironment(job_id={log.parent.name}" in text for log, text in zip(logs, texts))
