"""The `ganlab` command as a user meets it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY, ganlab


def test_ganlab_help_lists_the_commands():
    out = ganlab("--help")
    assert out.returncode == 0 and "train" in out.stdout and "ganlab train --help" in out.stdout


def test_train_help_lists_groups_options_and_examples():
    out = ganlab("train", "--help")
    assert out.returncode == 0
    for text in ("ganlab train", "data: cifar10, digits, fashion_mnist, folder, gauss1d, grid25, mnist, ring8",
                 "loss: bce, bce_logits, hinge, label_smoothing, lsgan, minimax, rpgan, wgan_gp", "optim: adam, rmsprop",
                 "Examples:", "lr: 0.0002"):
        assert text in out.stdout
    groups = out.stdout.split("== Config (")[0]
    assert "schema" not in groups and "hydra/launcher: parallel" in groups
    assert not [line for line in groups.splitlines() if line.endswith(":")]  # no empty group


def test_unknown_command_is_a_clear_error():
    out = ganlab("trian")
    assert out.returncode == 2 and "unknown command 'trian'" in out.stderr


def test_train_writes_the_run_folder_under_outputs_and_prints_it_last(tmp_path):
    out = ganlab("train", *TINY, "trainer.steps=4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    *_, headline, folder = out.stdout.strip().splitlines()
    run = Path(folder)
    assert run.parent == tmp_path / "outputs" / "runs" and run.name.endswith("_digits_bce_logits")
    # the answer where the user looks: the best score beside the floor, and which scores are at it
    assert headline.startswith("best fd_classifier ") and "(real vs real " in headline and "at the floor" in headline
    judged = json.loads((run / "summary.json").read_text())["at_the_floor"]
    assert set(judged) == {"at", "not"} and "fd_classifier" in judged["at"] + judged["not"]
    names = {p.name for p in run.iterdir()}
    assert {".hydra", "train.log", "metrics.csv", "summary.json", "history.png", "samples", "checkpoints"} <= names
    assert (run / ".hydra" / "overrides.yaml").read_text().count("trainer.steps=4") == 1
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert "completed after 4 steps" in (run / "train.log").read_text()


def test_hydra_run_dir_moves_the_run(tmp_path):
    out = ganlab("train", *TINY, "trainer.steps=2", f"hydra.run.dir={tmp_path / 'mine'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "mine")
    assert (tmp_path / "mine" / "checkpoints" / "last.pt").exists()


def test_missing_dataset_is_one_line_naming_files_and_folder(tmp_path):
    # mnist: Fashion-MNIST would be found in /usr/share/datasets where Debian's package is installed
    out = ganlab("train", "data=mnist", f"data.root={tmp_path / 'mn'}", cwd=tmp_path)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ganlab: error: data=mnist: cannot find train-images-idx3-ubyte[.gz]")
    assert str(tmp_path / "mn") in last
    assert not (tmp_path / "outputs" / "runs").exists() or not any((tmp_path / "outputs" / "runs").iterdir())


def test_a_run_folder_that_holds_a_run_is_left_untouched(tmp_path):
    target = tmp_path / "mine"
    assert ganlab("train", *TINY, "trainer.steps=2", f"hydra.run.dir={target}", cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    out = ganlab("train", *TINY, "trainer.steps=3", f"hydra.run.dir={target}", cwd=tmp_path)
    assert out.returncode == 2 and "already holds a run" in out.stderr and "hydra.run.dir=PATH" in out.stderr
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("overrides, message", [
    (["lr=1e-4"], "lr: no such setting; did you mean optim.lr?"),
    (["trainer.epoch=3"], "did you mean trainer.epochs"),
    (["-m", "loss=bce_logits,label_smoothing", "loss.real_target=0.8"],
     "loss.real_target belongs to loss=label_smoothing, not loss=bce_logits"),
    (["generator=nan"], "generator=nan: Hydra reads nan as a value, not a name, but generator takes an option's name"),
    (["-m", "loss=hinge,1"], "loss=hinge,1: Hydra reads 1 as a value"),
])
def test_a_setting_hydra_would_refuse_gets_a_message_that_leads_to_the_fix(tmp_path, overrides, message):
    out = ganlab("train", *overrides, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()  # nothing written
