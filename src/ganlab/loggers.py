"""Optional loggers beside the CSV record: `logger=tensorboard` mirrors metrics.csv, quality.csv
and the sample grids into TensorBoard event files in the run folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid


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
            grid = make_grid(images.detach().float().cpu(), nrow=math.ceil(math.sqrt(len(images))),
                             normalize=True, value_range=(-1, 1))
            self.writer.add_image("samples", grid, step)

    def close(self) -> None:
        self.writer.close()


def build_logger(cfg: DictConfig, run_dir: Path, purge_step: Optional[int] = None) -> Optional[TensorBoardLogger]:
    if cfg.name == "tensorboard":
        return TensorBoardLogger(run_dir / "tensorboard", purge_step)
    return None
