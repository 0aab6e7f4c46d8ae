"""Shared helpers: compose the real configs, shrink them to seconds, run the real CLI, and make
once per session (per xdist worker) the small runs that several tests only read."""

from __future__ import annotations

import atexit
import copy
import functools
import io
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from omegaconf import DictConfig

from ganlab.config import compose_train

REPO = Path(__file__).resolve().parents[1]
# Trained feature classifiers are cached for the whole test session, away from the user's cache;
# subprocesses (the real CLI) inherit it. Each xdist worker has its own: workers never share files.
os.environ["GANLAB_CACHE"] = tempfile.mkdtemp(prefix="ganlab-test-cache-")
atexit.register(shutil.rmtree, os.environ["GANLAB_CACHE"], ignore_errors=True)  # leave no cache behind
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers share the cores: one torch thread each, here and in the processes the tests start (a
    # sweep still gives each of its jobs cores // jobs threads itself).
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
# A quick quality evaluation: a classifier trained for 60 steps, 200 samples.
QUICK_METRICS = ["metrics.classifier_steps=60", "metrics.n_samples=200"]
# A few G steps of small networks: enough to exercise every file a run writes (480 of the digits:
# 30 steps an epoch; the yardstick is the whole dataset's all the same).
TINY = ["data.limit=480", "trainer.epochs=2", "trainer.batch_size=16", "trainer.log_every=2", "trainer.progress=false",
        "generator.width=8", "discriminator.width=8", "trainer.threads=1", "metrics.every=1", *QUICK_METRICS]
TINY_POINTS = ["data=ring8", "data.n_samples=256", "generator=mlp", "discriminator=mlp",
               "generator.width=16", "discriminator.width=16", "trainer.epochs=2", "trainer.batch_size=32",
               "trainer.log_every=2", "trainer.progress=false", "trainer.threads=1", "metrics.every=1",
               *QUICK_METRICS]


def experiment_script(name: str):
    """experiments/NAME.py imported as a module (the folder is no package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def make_cfg(*overrides: str) -> DictConfig:
    """The real root config composed with `overrides`, as `ganlab train` would see it: composed once
    per session (Hydra takes a quarter of a second), a fresh copy each call."""
    return copy.deepcopy(_composed(overrides))


@functools.lru_cache(maxsize=None)
def _composed(overrides: tuple[str, ...]) -> DictConfig:  # interpolations (${oc.env:...}) stay unresolved
    return compose_train(*overrides)


@pytest.fixture(scope="session")
def _session_runs(tmp_path_factory) -> tuple[Path, dict[tuple[str, ...], Path]]:
    return tmp_path_factory.mktemp("session-runs"), {}


@pytest.fixture
def run_copy(_session_runs, tmp_path):
    """`run_copy(*overrides)`: a run of `overrides` trained once per session, copied into this test's
    tmp_path (as tmp_path / name), so that a test may change, resume or break its copy."""
    from ganlab.training.job import run_job

    root, made = _session_runs

    def copy_of(*overrides: str, name: str = "run") -> Path:
        if overrides not in made:
            folder = root / f"run{len(made)}"
            run_job(make_cfg(*overrides), folder)
            made[overrides] = folder
        return Path(shutil.copytree(made[overrides], tmp_path / name, symlinks=True))

    return copy_of


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    """`ganlab ARGS` in a fresh process, as a user types it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "ganlab.cli", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def whole_and_resumed(tmp_path: Path, overrides: list[str], steps: int) -> tuple[dict, dict]:
    """The last checkpoints of a run of `steps` G steps and of the same run stopped half way and
    resumed to the end (in-process), for bit-for-bit comparisons."""
    import torch

    from ganlab.training.job import run_job
    from ganlab.training.resume import resume_run

    whole, halves = tmp_path / "whole", tmp_path / "halves"
    run_job(make_cfg(*overrides, f"trainer.steps={steps}"), whole)
    run_job(make_cfg(*overrides, f"trainer.steps={steps // 2}"), halves)
    resume_run(halves, [f"trainer.steps={steps}"])
    return tuple(torch.load(p / "checkpoints" / "last.pt", weights_only=True) for p in (whole, halves))


def ganlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`ganlab ARGS` run in this process: what run_cli checks, without a second of interpreter and
    torch start-up per call (for commands that fail fast or train for a moment)."""
    from ganlab.cli import main

    out, err, argv, path, env, here = io.StringIO(), io.StringIO(), sys.argv[:], sys.path[:], dict(os.environ), os.getcwd()
    try:
        os.chdir(cwd or REPO)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:  # what a command changes for its own process (the import path, PYTHONPATH) ends with it
        sys.argv[:], sys.path[:] = argv, path
        os.environ.clear()
        os.environ.update(env)
        os.chdir(here)
    return subprocess.CompletedProcess(["ganlab", *args], code or 0, out.getvalue(), err.getvalue())


def pytest_collection_modifyitems(items) -> None:
    """Tests that share a module's fixture (marked xdist_group) first: under xdist each group is one
    unit of work, the longest there is, and one started last would leave the other workers idle."""
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)  # stable: the order otherwise kept
