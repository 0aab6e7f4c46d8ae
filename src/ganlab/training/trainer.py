"""One training loop for every loss: n_critic D steps, then one G step, measured on the way.

Each concern owns its state and checkpoints it with state_dict / load_state_dict: the batch stream
(batches.py), the D/G step with its networks, optimisers and augmentation (step.py), the
metrics.csv rows (metrics_log.py), grids and quality scores (scorekeeper.py) and the EMA generator
(ema.py). The loop below only orders them; the checkpoint is their states side by side. The Trainer
knows no config: it is handed its Parts and a Schedule (job.build_trainer makes them from one), so a
GAN built by hand trains through it too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Optional

import torch
from tqdm import tqdm

from ganlab.quality import Evaluator
from ganlab.record.checkpoints import Checkpoint, set_rng_state
from ganlab.record.run_folder import BEST_PT, LAST_PT, RunFolder
from ganlab.training import cost
from ganlab.training.batches import BatchStream
from ganlab.training.diagnose import Diagnostician
from ganlab.training.ema import GeneratorEMA
from ganlab.training.scorekeeper import Scorekeeper
from ganlab.training.metrics_log import MetricsLog
from ganlab.training.step import GAN, GANStep

log = logging.getLogger(__name__)


def steps_per_epoch(n_samples: int, batch_size: int, n_critic: int) -> int:
    """G steps in one pass over the data: each takes n_critic full batches."""
    return n_samples // batch_size // n_critic


@dataclass(frozen=True)
class Schedule:
    """When the loop does what: its length in G steps, and the intervals of its rows, grids, evaluations
    and checkpoints."""
    total_steps: int  # G steps of the whole run
    steps_per_epoch: int  # G steps in one pass over the data (steps_per_epoch())
    log_every: int  # G steps between metrics.csv rows
    sample_every: int  # epochs between sample grids
    evaluate_every: int  # epochs between quality evaluations (and one at the end)
    checkpoint_every: int  # epochs between writes of last.pt
    checkpoint_minutes: float  # and minutes, so that a kill never loses more


@dataclass
class Parts:
    """What the loop drives, each with its own state (training/job.py builds them from the config)."""
    gan: GAN
    batches: BatchStream
    gan_step: GANStep
    metrics_log: MetricsLog
    scorekeeper: Scorekeeper
    diagnostician: Diagnostician
    ema: Optional[GeneratorEMA] = None
    logger: Any = None  # TensorBoard or MLflow beside the CSVs (trackers.py)


class Trainer:
    def __init__(self, parts: Parts, schedule: Schedule, run: RunFolder, config: dict[str, Any],
                 sample_shape: tuple[int, ...], classes: Optional[list[str]] = None, progress_bar: bool = True):
        """`config`: the run's config as plain data, kept in every checkpoint (resume, sample and eval rebuild
        the run from it); `classes`: a conditional GAN's, by label."""
        self.schedule, self.run, self.config, self.progress_bar = schedule, run, config, progress_bar
        self.gan, self.batches, self.gan_step = parts.gan, parts.batches, parts.gan_step
        self.metrics_log, self.scorekeeper, self.diagnostician = parts.metrics_log, parts.scorekeeper, parts.diagnostician
        self.ema, self.logger = parts.ema, parts.logger
        self.sample_shape, self.classes = sample_shape, classes
        self.steps_per_epoch, self.total_steps = schedule.steps_per_epoch, schedule.total_steps
        self.step = 0  # G steps done
        self.epoch = 0  # epochs completed (whole passes over the data)
        self.partial_epoch = False  # the run's steps ended mid-epoch (that epoch's grid, scores are labelled epoch + 1)
        self.elapsed = 0.0  # seconds of training before this session (a resumed run)
        self.stop_signal: str | None = None  # set by SIGINT / SIGTERM: checkpoint and stop
        self.finished = False  # the last step's end-of-run work is done (a checkpoint of a run's end)
        self.quiet = False  # another member of its stack says the pace

    @property
    def evaluator(self) -> Evaluator | None:
        return self.scorekeeper.evaluator

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    # ------------------------------------------------------------------------------ loop
    def fit(self) -> None:
        if not self.begin():
            return
        with tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                  disable=not self.progress_bar) as bar:
            while True:  # an epoch (or what is left of it, or of the run) at a time; a run stopped after its
                # last step but before its end's work (a signal) does that work when resumed
                for _ in range(min(self.batches.steps_left(), self.total_steps - self.step)):
                    self.after_step(self.gan_step(self.batches.next(), self.step), bar)
                    self.checkpoint_if_due()
                self.close_epoch()
                if self.step >= self.total_steps:
                    return

    def begin(self, quiet: bool = False) -> bool:
        """Start the clocks and say what the run will cost (unless `quiet`); False when nothing is left."""
        schedule = self.schedule
        self.start = time.perf_counter() - self.elapsed
        self.last_save = time.perf_counter()
        if self.finished and self.step >= self.total_steps:  # killed after its last checkpoint: nothing left
            return False
        n_evaluations = cost.evaluations(self.total_steps, self.steps_per_epoch, schedule.evaluate_every) \
            if self.evaluator is not None else 0
        self.quiet = quiet
        if not quiet:
            log.info(cost.plan(self.total_steps, self.steps_per_epoch, self.batches.n_critic, n_evaluations,
                               self.gan_step.device, torch.get_num_threads(), self.gan_step.precision.mode))
        self.pace = cost.Pace(self.step, self.scorekeeper.seconds, self.total_steps, n_evaluations)
        return True

    def after_step(self, stats: torch.Tensor, bar: Optional[tqdm] = None) -> None:
        """What follows a G step whose measurements are `stats` (STATS order): EMA, a metrics row."""
        self.metrics_log.add(stats)
        self.step += 1
        self._say(self.pace.after_step(self.step, self.scorekeeper.seconds))
        if self.ema:
            self.ema.update(self.gan.generator, self.step)
        if bar is not None:
            bar.update()
        if self.step % self.schedule.log_every == 0:
            postfix = self.metrics_log.write_row(self.step, self.seconds())
            if bar is not None:
                bar.set_postfix(postfix, refresh=False)

    def checkpoint_if_due(self) -> None:
        """A checkpoint when a signal asks to stop (then stop) or checkpoint_minutes have passed."""
        if self.stop_signal:
            self.save_checkpoint(LAST_PT)
            raise KeyboardInterrupt(self.stop_signal)
        if time.perf_counter() - self.last_save > 60 * self.schedule.checkpoint_minutes:
            self.save_checkpoint(LAST_PT)  # a kill never loses more than checkpoint_minutes

    def close_epoch(self) -> None:
        """After an epoch's steps (or the run's last ones, mid-epoch): its grids, scores and checkpoint."""
        self.partial_epoch = self.batches.steps_left() > 0  # the run's steps ended mid-epoch
        if not self.partial_epoch:
            self.batches.end_epoch()
            self.epoch += 1
        self.end_of_epoch(final=self.step >= self.total_steps)

    @property
    def epochs_done(self) -> int:
        """Epochs trained, a run's partial last epoch (its steps ran out mid-epoch) counted."""
        return self.epoch + self.partial_epoch

    def end_of_epoch(self, final: bool) -> None:
        schedule, epoch, scorekeeper = self.schedule, self.epochs_done, self.scorekeeper
        if final:
            self.metrics_log.write_row(self.step, self.seconds())
        evaluate = self.evaluator is not None and (final or epoch % schedule.evaluate_every == 0)
        if final or evaluate or epoch % schedule.sample_every == 0:
            scorekeeper.save_samples(epoch, self.step)
        if evaluate:
            before = scorekeeper.seconds
            if scorekeeper.evaluate(epoch, self.step):
                self.save_checkpoint(BEST_PT)
            self._say(self.pace.after_evaluation(self.step, scorekeeper.seconds - before))
        if final and self.evaluator is not None:
            scorekeeper.check_degradation(epoch)
        if final or epoch % schedule.checkpoint_every == 0:
            self.metrics_log.plot_history(self.evaluator)
            self.save_checkpoint(LAST_PT, finished=final)

    def _say(self, line: str | None) -> None:
        """A line of the pace (time left), unless another member of its stack says it."""
        if line and not self.quiet:
            log.info(line)

    # ------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, name: str, finished: bool = False) -> None:
        self.gan_step.check_weights(self.step)
        Checkpoint(self.config, list(self.sample_shape), self.step, self.epoch, finished,
                   time.perf_counter() - self.start, self.parts_state(), self.classes).write(self.run, name)
        self.last_save = time.perf_counter()

    def parts_state(self) -> dict[str, Any]:
        return {**self.gan_step.state_dict(),  # generator, discriminator, opt_g, opt_d, augment
                **({"generator_ema": self.ema.state_dict()} if self.ema else {}),
                # the file's names for the last three, from format 2 on: recorder, evaluation, doctor
                "batches": self.batches.state_dict(), "recorder": self.metrics_log.state_dict(),
                "evaluation": self.scorekeeper.state_dict(), "doctor": self.diagnostician.state_dict()}

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from a checkpoint written by save_checkpoint (of any format), bit for bit."""
        self.step, self.epoch = checkpoint.step, checkpoint.epoch
        self.finished, self.elapsed = checkpoint.finished, checkpoint.elapsed
        parts = checkpoint.parts
        self.gan_step.load_state_dict(parts)
        if self.ema:
            self.ema.load_state_dict(parts["generator_ema"])
        self.batches.load_state_dict(parts["batches"])
        self.metrics_log.load_state_dict(parts["recorder"])
        self.scorekeeper.load_state_dict(parts["evaluation"])
        self.diagnostician.load_state_dict(parts["doctor"])
        set_rng_state(checkpoint.rng)
