"""logger=mlflow: each run is an MLflow run (config as params, every CSV column as metrics by step,
pictures and summary as artifacts), read back with MLflow's own client; a sweep is one experiment."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import importlib.util

import pytest

from tests.conftest import TINY_POINTS, ganlab

# Looked up, not imported, at collection (importing mlflow takes a second): the tests import it.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")


def mlflow_client(uri: str):
    import mlflow

    return mlflow.MlflowClient(uri)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_run_is_recorded_with_params_metrics_and_artifacts_and_resumes_into_the_same_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dir = tmp_path / "run"
    out = ganlab("train", *TINY_POINTS, "logger=mlflow", f"logger.tracking_uri={uri}", f"hydra.run.dir={run_dir}",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    client = mlflow_client(uri)
    experiment = client.get_experiment_by_name("ganlab")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["optim.lr"] == "0.0002" and run.data.params["data.name"] == "ring8"
    metrics = csv_rows(run_dir / "metrics.csv")
    history = client.get_metric_history(run.info.run_id, "loss_d")
    assert [(h.step, h.value) for h in history] == [(int(r["step"]), float(r["loss_d"])) for r in metrics]
    quality = csv_rows(run_dir / "quality.csv")
    swd = client.get_metric_history(run.info.run_id, "quality/swd")
    assert [(h.step, h.value) for h in swd] == [(int(r["step"]), float(r["swd"])) for r in quality]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "history.png", "samples"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "samples")} == {"samples/epoch_0001.png",
                                                                                 "samples/epoch_0002.png"}
    assert json.loads((run_dir / "mlflow.json").read_text())["run_id"] == run.info.run_id

    assert ganlab("resume", str(run_dir), "trainer.epochs=3", cwd=tmp_path).returncode == 0
    [again] = client.search_runs([experiment.experiment_id])
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    steps = [h.step for h in client.get_metric_history(run.info.run_id, "loss_d")]
    assert max(steps) == int(csv_rows(run_dir / "metrics.csv")[-1]["step"])


def test_a_sweep_is_one_experiment_named_after_its_folder(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "my_sweep"
    out = ganlab("train", "-m", "hydra/launcher=basic", *TINY_POINTS, "trainer.steps=4", "seed=1,2", "logger=mlflow",
                 f"logger.tracking_uri={uri}", f"hydra.sweep.dir={sweep}", "metrics.cache_dir=/some/where",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if (p / "summary.json").is_file())
    # a path's '/' nests no folders
    assert len(jobs) == 2 and all("metrics.cache_dir=_some_where" in job for job in jobs)
    client = mlflow_client(uri)
    runs = client.search_runs([client.get_experiment_by_name("my_sweep").experiment_id])
    assert sorted(r.info.run_name for r in runs) == jobs
    assert all(r.data.tags["ganlab.sweep"] == str(sweep) for r in runs)


def test_without_a_tracking_uri_runs_go_to_mlflow_db_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = ganlab("train", *TINY_POINTS, "trainer.steps=4", "logger=mlflow", f"hydra.run.dir={tmp_path / 'r'}",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    client = mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(client.search_runs([client.get_experiment_by_name("ganlab").experiment_id])) == 1
