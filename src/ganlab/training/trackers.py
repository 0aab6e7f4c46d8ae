"""Optional loggers beside the CSV record. `logger=tensorboard` mirrors metrics.csv, quality.csv and
the sample grids into TensorBoard event files in the run folder; `logger=mlflow` records the run in
an MLflow tracking store (params, metrics by step, artifacts), one experiment per sweep."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from ganlab.config import ConfigError
from ganlab.record.run_folder import HISTORY_PNG, METRICS_CSV, MLFLOW_JSON, QUALITY_CSV, SUMMARY_JSON


class TensorBoardLogger:
    def __init__(self, log_dir: Path, purge_step: Optional[int] = None):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run drops the events logged after its checkpoint, then logs them again
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def metrics(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key not in ("step", "epoch") and isinstance(value, float) and math.isfinite(value):
                self.writer.add_scalar(f"train/{key}", value, row["step"])

    def quality(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key not in ("step", "epoch"):
                self.writer.add_scalar(f"quality/{key}", value, row["step"])

    def samples(self, images: torch.Tensor, step: int) -> None:
        if images.dim() == 4:  # images in [-1, 1]; point clouds stay in the PNG plots
            from torchvision.utils import make_grid  # imported when needed: torchvision takes 1.4 s

            grid = make_grid(images.detach().float().cpu(), nrow=math.ceil(math.sqrt(len(images))),
                             normalize=True, value_range=(-1, 1))
            self.writer.add_image("samples", grid, step)

    def close(self, status: str) -> None:
        self.writer.close()


# ------------------------------------------------------------------------------------ MLflow
STATUS = {"completed": "FINISHED", "interrupted": "KILLED"}  # anything else: FAILED


def tracking_uri(cfg: DictConfig) -> str:
    return cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def mlflow_client(cfg: DictConfig):
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise ConfigError("logger=mlflow needs the mlflow package: pip install 'ganlab[mlflow]' (or use "
                          "logger=tensorboard)") from None
    uri = tracking_uri(cfg)
    try:
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)  # a store MLflow refuses says so here, before the run starts
    except Exception as e:
        said = str(e).split(". ")[0].strip()
        raise ConfigError(f"MLflow refuses the tracking store {uri} ({said[:200]}); use a database store, e.g. "
                          f"logger.tracking_uri=sqlite:///mlflow.db") from None
    return client


def experiment_id(client, name: str) -> str:
    """The experiment's id, made if needed (two jobs making it at once both get it)."""
    for _ in range(2):
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(name)
        except Exception:  # made by another job in between
            continue
    raise ConfigError(f"cannot create the MLflow experiment {name!r} in {client.tracking_uri}")


def flat_params(config: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:6000]  # MLflow's longest param value
    return out


def sweep_dir(run_dir: Path) -> Optional[Path]:
    """The folder of the sweep this job belongs to (None for a run of its own): Hydra's multirun folder, or
    for a job trained after its launcher made its folder (a stack's member) the folder above it that holds
    a sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ganlab.record.catalog import is_sweep

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return Path(HydraConfig.get().sweep.dir)
    return next((folder for folder in Path(run_dir).resolve().parents if is_sweep(folder)), None)


class MLflowLogger:
    def __init__(self, cfg: DictConfig, run_dir: Path, resumed: bool):
        from mlflow.entities import Param

        self.client, self.run_dir = mlflow_client(cfg.logger), run_dir
        record = run_dir / MLFLOW_JSON
        if resumed and record.is_file():
            self.run_id = json.loads(record.read_text())["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        sweep = sweep_dir(run_dir)
        name = cfg.logger.experiment or (sweep.name if sweep else "ganlab")
        run = self.client.create_run(experiment_id(self.client, name), run_name=run_dir.name,
                                     tags={"ganlab.run_dir": str(run_dir.resolve()),
                                           **({"ganlab.sweep": str(sweep.resolve())} if sweep else {})})
        self.run_id = run.info.run_id
        params = flat_params(OmegaConf.to_container(cfg, resolve=True))
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])
        record.write_text(json.dumps({"tracking_uri": self.client.tracking_uri, "experiment": name,
                                      "run_id": self.run_id}, indent=2) + "\n")

    def _log(self, row: dict[str, Any], prefix: str) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(f"{prefix}{k}", float(v), now, int(row["step"])) for k, v in row.items()
                   if k != "step" and isinstance(v, (int, float)) and math.isfinite(v)]
        self.client.log_batch(self.run_id, metrics=metrics)

    def metrics(self, row: dict[str, Any]) -> None:
        self._log(row, "")

    def quality(self, row: dict[str, Any]) -> None:
        self._log(row, "quality/")

    def samples(self, images: torch.Tensor, step: int) -> None:
        pass  # the grids are PNGs in the run folder, sent as artifacts at the end

    def close(self, status: str) -> None:
        for name in (SUMMARY_JSON, HISTORY_PNG, QUALITY_CSV, METRICS_CSV):
            if (self.run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_dir / name))
        if (self.run_dir / "samples").is_dir():
            self.client.log_artifacts(self.run_id, str(self.run_dir / "samples"), "samples")
        self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))


def build_logger(cfg: DictConfig, run_dir: Path, purge_step: Optional[int] = None):
    """The run's extra logger (None for the CSV record alone); purge_step is set for a resumed run."""
    if cfg.logger.name == "tensorboard":
        return TensorBoardLogger(run_dir / "tensorboard", purge_step)
    if cfg.logger.name == "mlflow":
        return MLflowLogger(cfg, run_dir, resumed=purge_step is not None)
    return None
