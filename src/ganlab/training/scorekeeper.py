"""What a run shows and scores: sample grids from fixed noise, and quality scores of samples from
fixed evaluation noise (quality.csv), with the best evaluation remembered and its closest
training images drawn. Both sample the EMA generator when there is one.

A conditional run's grids hold one class per row; its evaluation samples take classes drawn from
the data's frequencies, and each evaluation adds class_accuracy to quality.csv and a row per
class (accuracy, fd) to classes.csv."""

from __future__ import annotations

import logging
import time
from typing import Optional

import torch
import torch.nn as nn

from ganlab.parts.data import Dataset
from ganlab.quality import Evaluator, class_accuracy
from ganlab.training.diagnose import Diagnostician
from ganlab.quality.scores import as_loss
from ganlab.record.pictures import save_image_grid, save_points_plot
from ganlab.record.run_folder import CLOSEST_PAIRS_PNG, RunFolder, atomic_write
from ganlab.training.ema import GeneratorEMA
from ganlab.training.step import NonFiniteLossError

log = logging.getLogger(__name__)

POINT_GRID = 1000  # generated points drawn in each scatter plot of 1-D/2-D data


class Scorekeeper:
    def __init__(self, evaluator: Optional[Evaluator], run: RunFolder, data: Dataset, generator: nn.Module,
                 ema: Optional[GeneratorEMA], diagnostician: Diagnostician, logger, seed: int, title: str,
                 n_grid: int, n_samples: int, classes: Optional[list[str]] = None):
        """`seed`: the run's (the fixed and evaluation noise come from seed + 1); `n_grid` images a grid,
        `n_samples` an evaluation; `classes` of a conditional GAN (one grid row each)."""
        self.evaluator, self.run, self.data, self.title = evaluator, run, data, title
        self.generator, self.ema, self.diagnostician, self.logger = generator, ema, diagnostician, logger
        z_rng = torch.Generator().manual_seed(seed + 1)
        device = next(generator.parameters()).device
        n_fixed = n_grid if data.is_image else POINT_GRID
        self.classes = classes
        self.per_row = max(1, n_fixed // len(self.classes)) if self.classes else None  # a grid row per class
        if self.classes:
            n_fixed = self.per_row * len(self.classes)
        self.fixed_noise = torch.randn(n_fixed, generator.z_dim, generator=z_rng).to(device)
        self.eval_noise = torch.randn(n_samples, generator.z_dim, generator=z_rng).to(device)
        self.fixed_labels = self.eval_labels = None
        if self.classes:
            self.fixed_labels = torch.arange(len(self.classes)).repeat_interleave(self.per_row).to(device)
            drawn = torch.randint(len(data.labels), (n_samples,), generator=z_rng)
            self.eval_labels = data.labels.cpu()[drawn].to(device)
        self.best: dict = {}  # the best evaluation: epoch, step, metric, score, scores, samples
        self.last_eval: dict = {}  # the latest quality.csv row
        self.seconds = 0.0  # wall time spent on evaluations

    @torch.no_grad()
    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None, batch: int = 500) -> torch.Tensor:
        """Samples for `noise` (of the classes `labels`) from the EMA generator when there is one,
        else from G, in eval mode (batch norm uses running statistics)."""
        g = self.ema.sampler() if self.ema else self.generator.eval()
        parts = noise.split(batch)
        ys = labels.split(batch) if labels is not None else [None] * len(parts)
        samples = torch.cat([g(z) if y is None else g(z, y) for z, y in zip(parts, ys)])
        self.generator.train()
        return samples

    def floor_check(self, draws: int = 5) -> dict[str, list[str]]:
        """Which of the best evaluation's scores lie within 2 standard errors of the real-vs-real floor,
        the errors bootstrapped from the last evaluation's samples (the best's when it is the last)."""
        from ganlab.quality import at_the_floor

        with torch.no_grad():
            noise = self.evaluator.noise(self.generate(self.eval_noise, self.eval_labels), draws=draws)
        return at_the_floor(self.best.get("scores", {}), noise, self.evaluator.floor)

    def save_samples(self, epoch: int, step: int) -> None:
        samples, path = self.generate(self.fixed_noise, self.fixed_labels), self.run.sample_path(epoch)
        if self.logger:
            self.logger.samples(samples, step)
        title = f"{self.title}, epoch {epoch}"
        atomic_write(path, lambda tmp: save_image_grid(samples, tmp, fmt="png", nrow=self.per_row)
                     if self.data.is_image else save_points_plot(samples, self.data.x, tmp, title, fmt="png"))

    def evaluate(self, epoch: int, step: int) -> bool:
        """Score the samples of the evaluation noise into quality.csv; True when they are the best yet."""
        start = time.perf_counter()
        samples = self.generate(self.eval_noise, self.eval_labels)
        if not torch.isfinite(samples).all():
            raise NonFiniteLossError(f"non-finite generated samples at step {step}")
        scores = self.evaluator.score(samples)
        per_class = self.score_classes(samples, epoch, step)
        if per_class:
            scores["class_accuracy"] = class_accuracy(per_class)
        row = {"epoch": epoch, "step": step, **{k: float(f"{v:.6g}") for k, v in scores.items()}}
        self.seconds += time.perf_counter() - start
        self.run.append_row(self.run.quality_csv, row)
        if self.logger:
            self.logger.quality(row)
        self.last_eval = row
        primary = self.evaluator.primary
        log.info("epoch %d: %s %.4g", epoch, primary, scores[primary])
        is_best = not self.best or as_loss(primary, scores[primary]) < as_loss(primary, self.best["score"])
        if is_best:
            self.best = {"epoch": epoch, "step": step, "metric": primary, "score": row[primary], "scores": row,
                         "samples": str(self.run.sample_path(epoch).relative_to(self.run.path))}
            if per_class:
                self.best["per_class"] = per_class
            if hasattr(self.evaluator, "closest_pairs"):  # images: is the best generator copying?
                pairs = self.evaluator.closest_pairs(samples)
                atomic_write(self.run.path / CLOSEST_PAIRS_PNG,
                             lambda tmp: save_image_grid(pairs, tmp, fmt="png", nrow=4))
        for diagnosis in self.diagnostician.on_quality(row):
            log.warning("diagnosis: %s", diagnosis.line())
        return is_best

    def score_classes(self, samples: torch.Tensor, epoch: int, step: int) -> list[dict]:
        """A conditional run's per-class accuracy and fd, appended to classes.csv (else nothing)."""
        if not self.classes or getattr(self.evaluator, "reference_labels", None) is None:
            return []
        rows = self.evaluator.per_class(samples, self.eval_labels, self.classes)
        for row in rows:
            self.run.append_row(self.run.classes_csv, {"epoch": epoch, "step": step, **row})
        return rows

    def check_degradation(self, epoch: int) -> None:
        for diagnosis in self.diagnostician.degradation(self.best, self.last_eval, epoch):
            log.warning("diagnosis: %s", diagnosis.line())

    def state_dict(self) -> dict:
        return {"fixed_noise": self.fixed_noise.cpu(), "best": self.best, "last_eval": self.last_eval,
                "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.fixed_noise = state["fixed_noise"].to(self.fixed_noise.device)
        self.best, self.last_eval, self.seconds = state["best"], state["last_eval"], state["seconds"]
