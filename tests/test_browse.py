"""Browsing and comparing: the runs table, a sweep's verdict with pictures, the HTML report in a
real browser, TensorBoard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from ganlab.judging.report import write_report
from ganlab.record.catalog import find_runs
from ganlab.training.job import run_job
from tests.conftest import TINY, ganlab, make_cfg

# Its module-scoped run is made once: under xdist, this file's tests run on one worker.
pytestmark = pytest.mark.xdist_group("browse")

SWEEP_ARGS = ["-m", "hydra/launcher=basic", "optim.lr=1e-4,1e-3", "discriminator.dropout=0.0,0.3", "seed=1,2", *TINY,
              "trainer.steps=30"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """An outputs/ folder with a 2 x 2 x 2-seed sweep and two single runs, made by the real CLI."""
    root = tmp_path_factory.mktemp("project")
    assert ganlab("train", *SWEEP_ARGS, cwd=root).returncode == 0  # in this process, one job after another
    for extra in (["loss=hinge"], ["loss=lsgan", "trainer.batch_size=5000"]):  # the second fails
        ganlab("train", *TINY, "trainer.steps=10", *extra, cwd=root)
    return root / "outputs"


def sweep_of(outputs: Path) -> Path:
    return next((outputs / "sweeps").iterdir())


def test_runs_lists_every_run_newest_first_and_filters(outputs):
    out = ganlab("runs", str(outputs))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["started", "name", "sweep", "overrides"]
    assert "9 runs under" in lines[-1] and "digits_hinge" in lines[1]  # the newest single run first
    rows = json.loads(ganlab("runs", str(outputs), "--json").stdout)
    assert len(rows) == 9 and [r["started"] for r in rows] == sorted((r["started"] for r in rows), reverse=True)
    assert sum(r["sweep"] is not None for r in rows) == 8 and all(r["best_score"] for r in rows)
    only = json.loads(ganlab("runs", str(outputs), "--json", "--grep", "dropout=0.3").stdout)
    assert len(only) == 4 and all("discriminator.dropout=0.3" in r["overrides"] for r in only)
    assert json.loads(ganlab("runs", str(outputs), "--json", "--status", "failed").stdout) == []
    # a sweep's jobs: each line shows the overrides that differ, whole, and the shared ones are said once
    jobs = ganlab("runs", str(sweep_of(outputs))).stdout.splitlines()
    assert "8 runs under" in jobs[-1] and "every one with" in jobs[-1] and "trainer.epochs=" in jobs[-1]
    assert all("seed=" in line and "discriminator.dropout=" in line and "trainer.epochs=" not in line
               for line in jobs[1:9])


def test_compare_pairs_each_swept_key_within_seeds_and_the_other_key(outputs):
    sweep = sweep_of(outputs)
    out = ganlab("compare", str(sweep))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "8 runs compared by their best fd_classifier" in text
    assert "optim.lr: spread over 2 seeds in 2 settings of discriminator.dropout" in text
    assert re.search(r"(0\.001|0\.0001)\s+4\s+[\d.]+ \[[\d.]+, [\d.]+\]\s+best", text)
    assert re.search(r"\(paired: (t-test|sign-flip) p=\S+ [<>]=? \S+ over 4 pairs", text)  # 2 seeds x 2 dropouts
    assert "verdict: optim.lr=" in text and "verdict: discriminator.dropout=" in text
    for figure in ("curves.png", "grids.png", "heatmap.png"):
        assert Image.open(sweep / "compare" / figure).width > 200
    assert (sweep / "compare" / "compare.txt").read_text().strip() == text.split("\nfigures:")[0].strip()
    data = json.loads(ganlab("compare", str(sweep), "--json").stdout)
    effect = data["keys"]["optim.lr"]["effects"][0]
    assert effect["test"] == "paired" and effect["n_pairs"] == 4
    assert effect["verdict"] in ("better", "worse", "within noise", "interaction") and len(effect["interval"]) == 2


def test_compare_several_run_folders_and_bad_input(outputs, tmp_path):
    runs = [r.path for r in find_runs(outputs) if r.sweep is None and r.status == "completed"]
    jobs = [r.path for r in find_runs(sweep_of(outputs))][:2]
    out = ganlab("compare", *map(str, runs + jobs), "--out", str(tmp_path / "cmp"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "cmp" / "curves.png").is_file() and "runs compared" in out.stdout
    bad = ganlab("compare", str(tmp_path / "nothing"))
    assert bad.returncode == 2 and "is not a folder" in bad.stderr
    # a folder named with --out is not overwritten without --force, and never a run's own record
    before = (tmp_path / "cmp" / "compare.txt").read_bytes()
    again = ganlab("compare", *map(str, runs + jobs), "--out", str(tmp_path / "cmp"))
    assert again.returncode == 2 and "already exists; nothing was written" in again.stderr
    assert (tmp_path / "cmp" / "compare.txt").read_bytes() == before
    assert ganlab("compare", *map(str, runs + jobs), "--out", str(tmp_path / "cmp"), "--force").returncode == 0
    inside = ganlab("compare", *map(str, runs + jobs), "--out", str(jobs[0] / "samples"))
    assert inside.returncode == 2 and "inside the record of the run" in inside.stderr


def test_report_and_compare_of_runs_whose_scores_are_all_nan(outputs, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(sweep_of(outputs), sweep, ignore=shutil.ignore_patterns("compare", "report.html"))
    for job in (p for p in sweep.iterdir() if (p / "summary.json").exists()):
        summary = json.loads((job / "summary.json").read_text())
        for evaluation in (summary["quality"]["best"], summary["quality"]["final"]):
            evaluation["score"] = float("nan")
            evaluation["scores"] = {k: float("nan") for k in evaluation.get("scores", {})}
        (job / "summary.json").write_text(json.dumps(summary))
        lines = (job / "quality.csv").read_text().splitlines()
        head = lines[0].split(",")
        rows = [[("nan" if head[i] not in ("epoch", "step") else v) for i, v in enumerate(row.split(","))]
                for row in lines[1:]]
        (job / "quality.csv").write_text("\n".join([lines[0], *map(",".join, rows)]) + "\n")
    compared = ganlab("compare", str(sweep))
    assert compared.returncode == 2 and "NaN" in compared.stderr and "Traceback" not in compared.stderr
    page = write_report(sweep).read_text()
    assert page.startswith("<!doctype html>") and "No comparison:" in page and "NaN" in page


def test_report_of_a_sweep_and_a_run_escape_config_text(outputs):
    sweep = sweep_of(outputs)
    job = next(p for p in sweep.iterdir() if (p / "summary.json").exists())
    summary = json.loads((job / "summary.json").read_text())
    summary["error"] = "<script>alert('x')</script>"
    (job / "summary.json").write_text(json.dumps(summary))
    page = write_report(sweep).read_text()
    assert page.startswith("<!doctype html>") and "http://" not in page and "https://" not in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Which change helped" in page and page.count("data:image/png;base64,") > 8
    assert page.index("<div class='verdict'>verdict: optim.lr=") < page.index("<table")  # the answer on top
    run_page = write_report(job).read_text()
    assert 'class="slider"' in run_page and "Diagnoses" in run_page and "real vs real" in run_page
    assert "<div class='verdict'>best fd_classifier" in run_page


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium_without_errors(outputs, tmp_path):
    sweep = sweep_of(outputs)
    page = write_report(sweep)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'data-ready="yes"' in dom.stdout  # the page's script ran to its end
    errors = re.search(r'<pre id="js-errors" hidden="">(.*?)</pre>', dom.stdout, re.S)
    assert errors is not None and errors.group(1).strip() == ""
    for job in (p.name for p in sweep.iterdir() if (p / "summary.json").exists()):
        assert job in dom.stdout
    assert "epoch " in dom.stdout  # the sample slider shows its epoch
    # the jobs table sorts and filters (here from the address, as a click or typing does)
    link = page.as_uri() + "#sort=best_score&filter=dropout%3D0.3"
    dom = subprocess.run([chromium(), *flags, "--dump-dom", link], capture_output=True, text=True, timeout=120).stdout
    table = re.search(r'<table class="runs"[^>]*>.*?</table>', dom, re.S).group(0)
    assert 'data-sorted="best_score asc"' in table and 'data-shown="4"' in table
    shown = [row for row in re.findall(r"<tr>(.*?)</tr>", table, re.S) if "<td" in row]
    assert len(shown) == 4 and all("dropout=0.3" in row for row in shown)
    heads = re.findall(r"<th>(.*?)</th>", table)
    scores = [float(re.findall(r"<td[^>]*>(.*?)</td>", row)[heads.index("best_score")]) for row in shown]
    assert scores == sorted(scores)
    shot = tmp_path / "page.png"
    subprocess.run([chromium(), *flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert Image.open(shot).size == (1200, 1600)


def test_tensorboard_logger_writes_scalars_and_sample_grids(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_job(make_cfg(*TINY, "logger=tensorboard"), tmp_path / "r")
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"train/loss_d", "train/acc_fake", "quality/fd_classifier"} <= set(tags["scalars"])
    assert tags["images"] == ["samples"] and (tmp_path / "r" / "metrics.csv").is_file()


def test_a_sweeps_report_stays_small_with_long_runs(outputs, tmp_path):
    """Eight jobs of 60 epochs each (their grids copied to 60): the report embeds 12 grids a job and its plots
    in 256 colours, well under 2 MB, where every grid and 32-bit plot made it several."""
    sweep = Path(shutil.copytree(sweep_of(outputs), tmp_path / "sweep"))
    for run in find_runs(sweep):
        grid = sorted((run.path / "samples").glob("epoch_*.png"))[-1].read_bytes()
        for epoch in range(1, 61):
            (run.path / "samples" / f"epoch_{epoch:04}.png").write_bytes(grid)
    html = write_report(sweep).read_text()
    assert len(html.encode()) < 2_000_000
    frames = [json.loads(m) for m in re.findall(r'<script type="application/json">(.*?)</script>', html, re.S)]
    assert len(frames) == 8 and all(len(f) == 12 and f[-1]["epoch"] == 60 for f in frames)
