"""ganlab from Python: train with parts given as classes or factories, read a run, compare runs,
the same folders the CLI writes; and the docs' notebook executed in a real Jupyter kernel."""

from __future__ import annotations

import functools
import json
import shutil

import nbformat
import pytest
import torch.nn as nn
from nbclient import NotebookClient

import ganlab
from ganlab.record.run_folder import RunFolderError
from tests.conftest import QUICK_METRICS, REPO, run_cli
from tests.conftest import ganlab as ganlab_cli

SMALL = ["data.limit=480", "trainer.epochs=2", "trainer.batch_size=32", "trainer.log_every=5", "trainer.progress=false",
         "trainer.threads=1", "metrics.every=1", *QUICK_METRICS]


class FlatG(nn.Module):
    def __init__(self, z_dim=8, hidden=32):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, 64), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 1, 8, 8)


class FlatD(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)


def test_train_from_python_writes_the_folder_the_cli_reads(tmp_path):
    runs = [ganlab.train(*SMALL, seed=seed, generator=functools.partial(FlatG, hidden=hidden), discriminator=FlatD,
                         loss="hinge", run_dir=tmp_path / f"h{hidden}_s{seed}")
            for hidden in (16, 32) for seed in (1, 2)]
    run = runs[0]
    assert run.status == "completed" and run.path == tmp_path / "h16_s1"
    assert run.config.generator == {"_target_": f"{__name__}.FlatG", "hidden": 16} and run.config.loss.name == "hinge"
    assert list(run.metrics.columns[:2]) == ["step", "epoch"] and len(run.quality) == 2  # pandas DataFrames
    assert list(run.quality[["epoch", "fd_classifier"]].columns) == ["epoch", "fd_classifier"]  # as the notebook has it
    assert run.grids and run.generator()(__import__("torch").randn(3, 8)).shape == (3, 1, 8, 8)
    assert "best fd_classifier" in run._repr_html_() and "data:image/png;base64" in run._repr_html_()
    overrides = (run.path / ".hydra" / "overrides.yaml").read_text()
    assert "seed=1" in overrides and "generator=FlatG(hidden:16)" in overrides

    comparison = ganlab.compare(runs)
    assert comparison.verdicts[0].startswith("verdict: generator=") and "<pre>" in comparison._repr_html_()
    assert [r.path for r in ganlab.runs(tmp_path)] and ganlab.load_run(run.path).path == run.path
    cli = ganlab_cli("compare", *map(str, (r.path for r in runs)), "--json", cwd=REPO)
    assert cli.returncode == 0 and json.loads(cli.stdout)["runs"] == 4
    resumed = run_cli("resume", str(run.path), "trainer.epochs=3", cwd=REPO)  # a new process imports tests.*
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert ganlab.load_run(run.path).summary["epochs_done"] == 3
    with pytest.raises(RunFolderError, match="already holds"):
        ganlab.train(*SMALL, run_dir=run.path)  # a run folder is never overwritten


def test_a_run_of_classes_defined_in_a_notebook_says_so_where_they_cannot_be_imported(tmp_path, monkeypatch):
    """The fast half of the notebook test below: a class of a notebook's kernel lives in __main__."""
    import sys

    in_a_notebook = type("NotebookG", (FlatG,), {"__module__": "__main__"})
    with monkeypatch.context() as kernel:
        kernel.setattr(sys.modules["__main__"], "NotebookG", in_a_notebook, raising=False)
        run = ganlab.train(*SMALL, "trainer.steps=2", "metrics.enabled=false", generator=in_a_notebook,
                           discriminator=FlatD, run_dir=tmp_path / "run")
    assert run.config.generator["_target_"] == "__main__.NotebookG"
    lost = ganlab_cli("sample", str(run.path), "--out", str(tmp_path / "x.png"), "--checkpoint", "last")
    assert lost.returncode == 2 and "defined in a notebook or script (__main__)" in lost.stderr


def test_parts_and_folders_that_are_not_what_the_api_takes_get_one_clear_error(tmp_path):
    with pytest.raises(TypeError, match=r"generator=42: give an option's name \(generator='...'\), a class"):
        ganlab.train(generator=42, run_dir=tmp_path / "a")
    with pytest.raises(ganlab.ConfigError, match="generator=nan: Hydra reads nan as a value"):
        ganlab.train("generator=nan", run_dir=tmp_path / "b")
    with pytest.raises(ganlab.ConfigError, match="loss._target_=builtins.len is the builtin function builtins.len, "
                                                 "not a loss class of yours"):
        ganlab.train(*SMALL, "trainer.steps=2", loss=len, run_dir=tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="/nonexistent: no such run folder"):
        ganlab.load_run("/nonexistent")
    with pytest.raises(ValueError, match="is not a ganlab run folder"):
        ganlab.load_run(tmp_path)
    assert not any((tmp_path / name).exists() for name in "abc")


@pytest.mark.slow  # 40 s: six runs in a Jupyter kernel; the API it drives is checked by the tests above
def test_the_notebook_in_docs_runs_in_a_real_kernel_and_shows_the_verdict(tmp_path):
    notebook = nbformat.read(REPO / "docs" / "your_own_gan.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = "\n".join(str(o.get("text") or o.get("data", {}).get("text/plain", ""))
                      for cell in notebook.cells for o in cell.get("outputs", []))
    assert "verdict: optim.lr=0.001 is best; every other value is worse beyond noise" in shown
    assert "fd_classifier" in shown and "Error" not in shown
    runs = sorted((tmp_path / "outputs" / "own").iterdir())
    assert len(runs) == 6 and all((r / ".hydra" / "config.yaml").is_file() for r in runs)
    # the notebook's classes live in its kernel: the CLI says so in one line, and compare still works
    lost = run_cli("sample", str(runs[0]), "--out", str(tmp_path / "x.png"), cwd=tmp_path)
    assert lost.returncode == 2 and "defined in a notebook or script (__main__)" in lost.stderr
    assert run_cli("compare", str(tmp_path / "outputs" / "own"), "--json", cwd=tmp_path).returncode == 0
    shutil.rmtree(tmp_path / "outputs")
