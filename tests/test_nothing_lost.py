"""Nothing lost, part 2: careless or hostile input never removes, mixes or overwrites a user's files,
and every such case is one line naming the problem and the fix."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganlab.record.catalog import find_runs
from ganlab.training.job import run_job
from tests.conftest import REPO, TINY_POINTS, ganlab, make_cfg

# The "B": a two-second run of points with no quality scores.
B = ["data=ring8", "generator=mlp", "discriminator=mlp", "trainer.steps=20", "metrics.enabled=false",
     "trainer.progress=false", "trainer.threads=1"]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def last_line(out: subprocess.CompletedProcess) -> str:
    return out.stderr.strip().splitlines()[-1]


# --------------------------------------------------------------- 1. a config error deletes nothing
@pytest.mark.parametrize("before", [{"train.log": "notes"}, {}, {".hydra/mine.txt": "my notes"}])
def test_a_config_error_leaves_a_folder_the_user_made_as_it_was(tmp_path, before):
    folder = tmp_path / "u3"
    folder.mkdir()
    for name, text in before.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    out = ganlab("train", *B, "optim.lr=-1", f"hydra.run.dir={folder}", cwd=tmp_path)
    assert out.returncode == 2
    assert folder.is_dir() and files(folder) == {k: v.encode() for k, v in before.items()}


def test_a_config_error_removes_the_folder_only_this_command_made(tmp_path):
    out = ganlab("train", *B, "optim.lr=-1", f"hydra.run.dir={tmp_path / 'new'}", cwd=tmp_path)
    assert out.returncode == 2 and last_line(out) == "ganlab: error: optim.lr=-1.0 must be > 0"
    assert not (tmp_path / "new").exists()


# ------------------------------------------------ 2. two trains into one folder: exactly one wins
def test_two_trains_started_together_into_one_folder_never_mix(tmp_path):
    folder = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-m", "ganlab.cli", "train", *B, f"seed={seed}",
                               f"hydra.run.dir={folder}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for seed in (1, 2)]
    outs = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert sorted(code for _, _, code in outs) == [0, 2]
    loser = next(err for _, err, code in outs if code == 2)
    assert "ganlab: error:" in loser and str(folder) in loser
    winner_seed = 1 if outs[0][2] == 0 else 2
    import torch

    state = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert state["config"]["seed"] == winner_seed
    assert f"seed: {winner_seed}" in (folder / ".hydra" / "config.yaml").read_text()
    steps = [r["step"] for r in csv.DictReader(open(folder / "metrics.csv"))]
    assert len(steps) == len(set(steps))


# ---------------------------------------------- 3, 4. resume after a CSV cut short or left empty
@pytest.fixture
def finished_run(run_copy) -> Path:
    return run_copy(*TINY_POINTS, "trainer.steps=20", "metrics.every=1")


def test_resume_drops_a_metrics_row_cut_by_a_kill_and_logs_it_again(finished_run):
    with open(finished_run / "metrics.csv", "a") as f:
        f.write("22,0.5")  # a kill while the extended run wrote step 22's row
    assert ganlab("resume", str(finished_run), "trainer.steps=40").returncode == 0
    rows = list(csv.DictReader(open(finished_run / "metrics.csv")))
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(2, 42, 2))
    assert all(r["loss_d"] not in ("", None) for r in rows)


@pytest.mark.parametrize("name", ["metrics.csv", "quality.csv"])
def test_an_empty_csv_does_not_make_a_run_unresumable(finished_run, name):
    (finished_run / name).write_bytes(b"")  # a kill at the file's creation
    out = ganlab("resume", str(finished_run), "trainer.steps=40")
    assert out.returncode == 0, out.stderr
    header = (finished_run / name).read_text().splitlines()[0]
    assert header.startswith("step,") or header.startswith("epoch,")
    assert json.loads((finished_run / "summary.json").read_text())["status"] == "completed"


# ------------------------------------------------------- 5. one bad summary.json is not fatal
@pytest.mark.parametrize("content", [b"[]", b"null", b"\xff\xfe{"])
def test_a_bad_summary_is_listed_as_unreadable_and_the_other_runs_still_show(finished_run, tmp_path, content):
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-r", str(finished_run), str(bad)], check=True)
    (bad / "summary.json").write_bytes(content)
    out = ganlab("runs", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    rows = {Path(r["run"]).name: r for r in json.loads(out.stdout)}
    assert rows["bad"]["status"] == "unreadable" and "summary.json" in rows["bad"]["error"]
    assert rows["run"]["status"] == "completed"
    report = ganlab("report", str(bad))
    assert report.returncode == 2 and str(bad / "summary.json") in last_line(report)
    assert "Traceback" not in report.stderr


# ------------------------------------------------------------------ 6. one line, no half-made run
def test_a_corrupt_idx_file_is_one_line_naming_it_and_leaves_no_run(tmp_path):
    root = tmp_path / "mn"
    root.mkdir()
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20))
    (root / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02")
    out = ganlab("train", "data=mnist", f"data.root={root}", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "train-images-idx3-ubyte.gz" in last_line(out) and "download the file again" in last_line(out)
    assert not (tmp_path / "outputs").exists() or not find_runs(tmp_path / "outputs")


def test_an_image_too_big_to_decode_is_skipped_with_the_others_read(tmp_path, monkeypatch):
    from PIL import Image

    from ganlab.parts.data import load_dataset

    for i in range(3):
        Image.new("L", (16, 16), 40 * i).save(tmp_path / f"small{i}.png")
    Image.new("L", (200, 200)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # as a 15000 x 15000 image is to the default
    data = load_dataset(make_cfg("data=folder", f"data.root={tmp_path}", "data.image_size=16").data)
    assert len(data) == 3


@pytest.mark.parametrize("override", ["generator.width=1000000", "data.n_samples=1000000000000",
                                      "trainer.n_grid=1000000000000"])
def test_settings_that_cannot_fit_in_memory_are_refused_before_anything_is_allocated(tmp_path, override):
    out = ganlab("train", *B, override, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert override in last_line(out) and "of memory" in last_line(out)
    assert not (tmp_path / "r").exists()


def test_sample_refuses_more_samples_than_memory_holds(finished_run, tmp_path):
    out = ganlab("sample", str(finished_run), "--n", str(10**12), "--out", str(tmp_path / "x.npz"),
                  "--checkpoint", "last")
    assert out.returncode == 2 and "--n 1000000000000" in last_line(out) and "of memory" in last_line(out)


@pytest.mark.parametrize("where", ["afile/run", "/proc/ganlab-run"])
def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path, where):
    (tmp_path / "afile").write_text("x")
    out = ganlab("train", *B, f"hydra.run.dir={where}", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert last_line(out).startswith("ganlab: error: cannot write the run folder") and "hydra.run.dir" in last_line(out)


@pytest.mark.parametrize("value, says", [("abc", "abc"), ("1.5", "1.5")])
def test_resume_refuses_a_value_of_the_wrong_type(finished_run, value, says):
    out = ganlab("resume", str(finished_run), f"trainer.epochs={value}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"trainer.epochs={says}" in last_line(out)


# ---------------------------------------------- 7. user files with ganlab's names are never touched
@pytest.mark.parametrize("name", ["history.png", "samples/epoch_0001.png", ".hydra/config.yaml"])
def test_a_folder_holding_files_with_ganlab_names_is_refused_untouched(tmp_path, name):
    folder = tmp_path / "mine"
    (folder / name).parent.mkdir(parents=True)
    (folder / name).write_text("the user's own file")
    out = ganlab("train", *B, f"hydra.run.dir={folder}", cwd=tmp_path)
    assert out.returncode == 2 and "already holds files ganlab would write" in last_line(out)
    assert files(folder) == {name: b"the user's own file"}


# ----------------------------------------------------------------------- 8. nothing silently ignored
def test_an_appended_unknown_key_is_refused_like_a_misspelled_one(tmp_path):
    out = ganlab("train", *B, "+optim.lrr=1", f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert out.returncode == 2 and "+optim.lrr is not a setting" in last_line(out) and "lr" in last_line(out)
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------------- 9. smaller
def test_a_slash_in_the_name_is_refused(tmp_path):
    out = ganlab("train", *B, "name=a/b", cwd=tmp_path)
    assert out.returncode == 2 and "name='a/b'" in last_line(out)
    assert not (tmp_path / "outputs").exists()


def test_sample_into_a_path_under_a_file_says_it_is_a_file(finished_run, tmp_path):
    (tmp_path / "afile").write_text("x")
    out = ganlab("sample", str(finished_run), "--out", str(tmp_path / "afile" / "x.png"), "--checkpoint", "last")
    assert out.returncode == 2 and "is a file, not a folder" in last_line(out)


def test_a_killed_run_is_listed_as_stopped_and_resumes_from_scratch_bit_for_bit(tmp_path):
    """Killed before its first checkpoint: `ganlab runs` says stopped, resume starts it over in its
    folder and ends with what an uninterrupted run gives."""
    run = [*TINY_POINTS, "trainer.epochs=30", "trainer.checkpoint_every=100", "metrics.every=10"]
    reference = tmp_path / "reference"
    assert ganlab("train", *run, f"hydra.run.dir={reference}").returncode == 0
    folder = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "ganlab.cli", "train", *run, f"hydra.run.dir={folder}"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (folder / "metrics.csv").exists():
        assert process.poll() is None
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert not (folder / "checkpoints" / "last.pt").exists()
    assert [r.status for r in find_runs(folder)] == ["stopped"]
    out = ganlab("resume", str(folder))
    assert out.returncode == 0 and "starting it over in the same folder" in out.stderr
    from tests.test_resume import assert_same_run

    assert_same_run(reference, folder)


def test_a_live_run_cannot_be_resumed_by_a_second_process(tmp_path):
    folder = tmp_path / "live"
    process = subprocess.Popen([sys.executable, "-m", "ganlab.cli", "train", *TINY_POINTS, "trainer.epochs=200",
                                "metrics.enabled=false", f"hydra.run.dir={folder}"], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (folder / "metrics.csv").exists():
            time.sleep(0.02)
        assert [r.status for r in find_runs(folder)] == ["running"]
        out = ganlab("resume", str(folder))
        assert out.returncode == 2 and "is being written by another ganlab process" in last_line(out)
        assert f"pid {process.pid}" in last_line(out)
    finally:
        process.kill()
        process.wait()


def test_extending_a_steps_limited_run_labels_its_epochs_right(tmp_path):
    folder = tmp_path / "run"
    cfg = make_cfg(*TINY_POINTS, "metrics.enabled=false")  # 256 points / 32: 8 steps an epoch
    run_job(make_cfg(*TINY_POINTS, "metrics.enabled=false", "trainer.steps=4"), folder)
    assert ganlab("resume", str(folder), "trainer.steps=16").returncode == 0
    summary = json.loads((folder / "summary.json").read_text())
    assert cfg.trainer.batch_size == 32 and summary["steps_done"] == 16 and summary["epochs_done"] == 2
    assert sorted(p.name for p in (folder / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]


def test_history_and_grids_are_written_atomically(tmp_path, monkeypatch):
    """A write that fails half way (a kill, a full disk) leaves the previous picture whole."""
    import ganlab.training.metrics_log as trainer_module

    folder = tmp_path / "run"
    run_job(make_cfg(*TINY_POINTS, "metrics.enabled=false"), folder)
    before = (folder / "history.png").read_bytes()

    def half_written(metrics, path, *args):
        Path(path).write_bytes(before[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainer_module, "plot_history", half_written)
    with pytest.raises(Exception, match="No space left"):
        from ganlab.training.resume import resume_run

        resume_run(folder, ["trainer.epochs=3"])
    assert (folder / "history.png").read_bytes() == before
    assert not list(folder.glob(".history.png*"))


def test_sample_and_report_never_overwrite_a_file_or_write_into_a_runs_record(tmp_path):
    """`echo precious > mine.png; ganlab sample RUN --out mine.png` kept the file only by luck before."""
    from tests.conftest import TINY

    run = tmp_path / "run"
    assert ganlab("train", *TINY, "trainer.steps=4", f"hydra.run.dir={run}").returncode == 0
    mine = tmp_path / "mine.png"
    mine.write_text("precious")
    out = ganlab("sample", str(run), "--n", "4", "--out", str(mine))
    assert out.returncode == 2 and "already exists; nothing was written" in out.stderr and "--force" in out.stderr
    assert mine.read_text() == "precious"
    wrote = ganlab("sample", str(run), "--n", "4", "--out", str(mine), "--force")
    assert wrote.returncode == 0 and mine.read_bytes().startswith(b"\x89PNG")
    assert f"wrote 4 samples of {run} (best.pt, seed 0) to {mine}" in wrote.stdout  # it says what it wrote
    grid = sorted((run / "samples").glob("*.png"))[-1]
    before = grid.read_bytes()
    for target in (grid, run / "samples" / "new.png", run / "checkpoints" / "x.npz", run / "metrics.csv"):
        out = ganlab("sample", str(run), "--n", "4", "--out", str(target), "--force")
        assert out.returncode == 2 and "inside the record of the run" in out.stderr, target
    assert grid.read_bytes() == before and not (run / "samples" / "new.png").exists()
    assert ganlab("sample", str(run), "--n", "4", "--out", str(run / "extra.png")).returncode == 0  # beside it: fine
    page = tmp_path / "page.html"
    page.write_text("mine")
    out = ganlab("report", str(run), "--out", str(page))
    assert out.returncode == 2 and page.read_text() == "mine"
    out = ganlab("sample", str(run), "--n", "4", "--out", str(tmp_path))
    assert out.returncode == 2 and "is a folder" in out.stderr


def test_config_files_are_code_foreign_callbacks_and_alias_bombs_are_refused(tmp_path):
    import time

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "myconf" / "exp").mkdir(parents=True)
    (tmp_path / "myconf" / "exp" / "openw.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    x:\n      _target_: builtins.open\n"
        f"      _args_: [{victim}, w]\n")
    out = ganlab("train", "--config-dir", str(tmp_path / "myconf"), "+exp=openw", cwd=tmp_path)
    assert out.returncode == 2 and "builtins.open" in out.stderr and "GANLAB_ALLOW_CALLBACKS=1" in out.stderr
    assert victim.read_text() == "precious" and not (tmp_path / "outputs").exists()
    (tmp_path / "myconf" / "exp" / "openw.yaml").unlink()
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(6)]
    (tmp_path / "myconf" / "exp" / "bomb.yaml").write_text("# @package _global_\n" + "\n".join(lines) + "\n")
    start = time.perf_counter()
    out = ganlab("train", "--config-dir", str(tmp_path / "myconf"), "+exp=bomb", cwd=tmp_path)
    assert out.returncode == 2 and "alias" in out.stderr and time.perf_counter() - start < 30
    (tmp_path / "myconf" / "exp" / "bomb.yaml").unlink()
    (tmp_path / "myconf" / "exp" / "tag.yaml").write_text(
        "# @package _global_\noptim:\n  lr: !!python/object/apply:os.system [echo hacked]\n")
    out = ganlab("train", "--config-dir", str(tmp_path / "myconf"), "+exp=tag", cwd=tmp_path)
    assert out.returncode == 2 and "tag.yaml, line 3: the YAML tag !!python/object/apply:os.system" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_resuming_a_run_whose_config_yaml_is_empty_says_so_in_one_line(tmp_path):
    from tests.conftest import TINY

    run = tmp_path / "run"
    assert ganlab("train", *TINY, "trainer.steps=2", f"hydra.run.dir={run}").returncode == 0
    (run / ".hydra" / "config.yaml").write_text("")
    out = ganlab("resume", str(run), "trainer.steps=4")
    assert out.returncode == 2 and "config.yaml is empty or not a config" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    (run / ".hydra" / "config.yaml").unlink()  # as the message says: the checkpoint's config is used
    assert ganlab("resume", str(run), "trainer.steps=4").returncode == 0


def test_a_non_ascii_run_dir_is_told_to_quote_and_works_quoted(tmp_path):
    from tests.conftest import TINY

    folder = tmp_path / "ünïcode" / "run"
    out = ganlab("train", *TINY, "trainer.steps=1", f"hydra.run.dir={folder}")
    assert out.returncode == 2 and f"write hydra.run.dir='{folder}'" in out.stderr and not folder.exists()
    assert ganlab("train", *TINY, "trainer.steps=1", f"hydra.run.dir='{folder}'").returncode == 0
    assert (folder / "summary.json").is_file()


def test_an_mlflow_store_that_mlflow_refuses_is_one_line_and_leaves_no_folder(tmp_path):
    pytest.importorskip("mlflow")
    from tests.conftest import TINY

    out = ganlab("train", *TINY, "trainer.steps=1", "logger=mlflow", f"logger.tracking_uri=file://{tmp_path}/mlruns",
                 f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2 and "MLflow refuses the tracking store" in out.stderr and "sqlite:///" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_a_failed_writes_hint_fits_its_cause(tmp_path):
    from ganlab.record.run_folder import RunFolderError, atomic_write

    with pytest.raises(RunFolderError, match="is gone") as gone:  # the run folder was deleted under the run
        atomic_write(tmp_path / "deleted" / "summary.json", lambda tmp: tmp.write_text("{}"))
    assert "resume" not in str(gone.value)
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(RunFolderError, match="is a folder") as folder:
        atomic_write(tmp_path / "a_folder", lambda tmp: tmp.write_text("{}"))
    assert "disk space" not in str(folder.value)


def test_an_interpolation_that_cannot_be_resolved_is_one_line_and_leaves_no_folder(tmp_path):
    out = ganlab("train", 'trainer.epochs=${oc.decode:"[1,"}', f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "ganlab: error: trainer.epochs: GrammarParseError" in out.stderr and "fix the interpolation" in out.stderr
    assert not (tmp_path / "run").exists()
