"""metrics.csv: the step measurements averaged over log_every G steps, one row (and one host sync)
per interval, handed to the tracker and the diagnostician; history.png drawn from the CSVs."""

from __future__ import annotations

import logging
import math

import torch

from ganlab.parts.losses import LOSS_COLUMNS
from ganlab.training.diagnose import Diagnostician
from ganlab.quality.scores import better
from ganlab.record.pictures import plot_history
from ganlab.record.run_folder import RunFolder, atomic_write
from ganlab.training.step import STATS, GANStep, NonFiniteLossError

log = logging.getLogger(__name__)


class MetricsLog:
    def __init__(self, run: RunFolder, gan_step: GANStep, diagnostician: Diagnostician, logger, steps_per_epoch: int,
                 title: str, blank: frozenset[str] = frozenset()):
        """`title`: the run's name on its history plot; `blank`: metrics.csv columns that mean nothing for this
        run (no R1, no class loss), left blank like the loss columns its loss does not fill."""
        self.run, self.gan_step, self.diagnostician, self.logger, self.title = run, gan_step, diagnostician, logger, title
        self.steps_per_epoch = steps_per_epoch
        self.sums = torch.zeros(len(STATS), device=gan_step.device)
        self.count = 0
        self.last_row: dict = {}
        self.blank = {*(set(LOSS_COLUMNS) - set(gan_step.gan.loss.columns)), *blank}

    def add(self, stats: torch.Tensor) -> None:
        self.sums += stats
        self.count += 1

    def write_row(self, step: int, seconds: float) -> dict[str, str]:
        """Average the measurements since the last row into metrics.csv; the progress bar's postfix."""
        if self.count == 0:
            return {}
        stats = {k: float(f"{v:.6g}") for k, v in zip(STATS, (self.sums / self.count).tolist())}
        self.sums.zero_()
        self.count = 0
        gan, augment = self.gan_step.gan, self.gan_step.augment
        adaptive = augment is not None and augment.adaptive and math.isfinite(augment.rt)
        row = {"step": step, "epoch": round(step / self.steps_per_epoch, 4),
               **{k: "" if k in self.blank else v for k, v in stats.items()},
               "lr_d": gan.opt_d.param_groups[0]["lr"], "lr_g": gan.opt_g.param_groups[0]["lr"],
               "time_s": round(seconds, 3), "aug_p": augment.p if augment else "",
               "ada_rt": round(augment.rt, 4) if adaptive else ""}
        self.run.append_row(self.run.metrics_csv, row)
        self.last_row = row
        if self.logger:
            self.logger.metrics(row)
        bad = [k for k in ("loss_d", "loss_g", "grad_norm_d", "grad_norm_g") if not math.isfinite(stats[k])]
        if bad:
            raise NonFiniteLossError(f"non-finite {', '.join(bad)} at step {step}")
        for diagnosis in self.diagnostician.on_metrics(row):
            log.warning("diagnosis: %s", diagnosis.line())
        return {"loss_d": f"{stats['loss_d']:.3f}", "loss_g": f"{stats['loss_g']:.3f}"}

    def plot_history(self, evaluator) -> None:
        metrics, quality = (self.run.read_columns(path) for path in (self.run.metrics_csv, self.run.quality_csv))
        primary = evaluator.primary if evaluator else None
        floor = evaluator.floor.get(primary) if evaluator else None
        atomic_write(self.run.history_png, lambda tmp: plot_history(metrics, tmp, self.title, "png", quality,
                                                                    primary, floor, better(primary) if primary else ""))

    def state_dict(self) -> dict:
        return {"sums": self.sums.cpu(), "count": self.count, "last_row": self.last_row}

    def load_state_dict(self, state: dict) -> None:
        sums = state["sums"].to(self.sums.device)  # an older run's, without the measurements added since
        self.sums, self.count = torch.cat([sums, self.sums[len(sums):]]), state["count"]
        self.last_row = state["last_row"]
