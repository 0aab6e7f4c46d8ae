"""One training loop for every loss: n_critic D steps, then one G step, measured on the way.

Each concern owns its state and checkpoints it with state_dict / load_state_dict: the batch stream
(batches.py), the D/G step with its networks, optimisers and augmentation (step.py), the
metrics.csv rows (recording.py), grids and quality scores (evaluation.py) and the EMA generator
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
from ganlab.record.checkpoints import CHECKPOINT_FORMAT, rng_state, set_rng_state
from ganlab.record.run_folder import BEST_PT, LAST_PT, RunFolder
from ganlab.training import cost
from ganlab.training.batches import BatchStream
from ganlab.training.diagnose import Diagnostician
from ganlab.training.ema import GeneratorEMA
from ganlab.training.evaluation import Evaluation
from ganlab.training.recording import Recorder
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
    recorder: Recorder
    evaluation: Evaluation
    doctor: Diagnostician
    ema: Optional[GeneratorEMA] = None
    logger: Any = None  # TensorBoard or MLflow beside the CSVs (trackers.py)


class Trainer:
    def __init__(self, parts: Parts, schedule: Schedule, run: RunFolder, config: dict[str, Any],
                 sample_shape: tuple[int, ...], classes: Optional[list[str]] = None, progress_bar: bool = True):
        """`config`: the run's config as plain data, kept in every checkpoint (resume, sample and eval rebuild
        the run from it); `classes`: a conditional GAN's, by label."""
        self.schedule, self.run, self.config, self.progress_bar = schedule, run, config, progress_bar
        self.gan, self.batches, self.gan_step = parts.gan, parts.batches, parts.gan_step
        self.recorder, self.evaluation, self.doctor = parts.recorder, parts.evaluation, parts.doctor
        self.ema, self.logger = parts.ema, parts.logger
        self.sample_shape, self.classes = sample_shape, classes
        self.steps_per_epoch, self.total_steps = schedule.steps_per_epoch, schedule.total_steps
        self.step = 0  # G steps done
        self.epoch = 0  # epochs completed
        self.elapsed = 0.0  # seconds of training before this session (a resumed run)
        self.stop_signal: str | None = None  # set by SIGINT / SIGTERM: checkpoint and stop
        self.finished = False  # the last step's end-of-run work is done (a checkpoint of a run's end)

    @property
    def evaluator(self) -> Evaluator | None:
        return self.evaluation.evaluator

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    # ------------------------------------------------------------------------------ loop
    def fit(self) -> None:
        t = self.schedule
        self.start = time.perf_counter() - self.elapsed
        self.last_save = time.perf_counter()
        if self.finished and self.step >= self.total_steps:  # killed after its last checkpoint: nothing left
            return
        if self.finished and self.batches.order is not None:  # a steps-limited end counted its partial
            self.epoch -= 1  # epoch as done; the extended run goes on with that epoch
        n_evaluations = cost.evaluations(self.total_steps, self.steps_per_epoch, t.evaluate_every) \
            if self.evaluator is not None else 0
        log.info(cost.plan(self.total_steps, self.steps_per_epoch, self.batches.n_critic, n_evaluations,
                           self.gan_step.device, torch.get_num_threads(), self.gan_step.precision.mode))
        self.pace = cost.Pace(self.step, self.evaluation.seconds, self.total_steps, n_evaluations)
        with tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                  disable=not self.progress_bar) as bar:
            while self.step < self.total_steps:
                reals = self.batches.next()
                if reals is None:  # this epoch's data is used up
                    self.epoch += 1
                    self.end_of_epoch(final=False)
                    continue
                self.recorder.add(self.gan_step(reals, self.step))
                self.step += 1
                self._say(self.pace.after_step(self.step, self.evaluation.seconds))
                if self.ema:
                    self.ema.update(self.gan.generator, self.step)
                bar.update()
                if self.step % t.log_every == 0:
                    bar.set_postfix(self.recorder.write_row(self.step, self.seconds()), refresh=False)
                if self.stop_signal:
                    self.save_checkpoint(LAST_PT)
                    raise KeyboardInterrupt(self.stop_signal)
                if time.perf_counter() - self.last_save > 60 * t.checkpoint_minutes:
                    self.save_checkpoint(LAST_PT)  # a kill never loses more than checkpoint_minutes
            self.batches.end_if_used_up()
            self.epoch += 1
            self.end_of_epoch(final=True)

    def end_of_epoch(self, final: bool) -> None:
        t, epoch, evaluation = self.schedule, self.epoch, self.evaluation
        if final:
            self.recorder.write_row(self.step, self.seconds())
        evaluate = self.evaluator is not None and (final or epoch % t.evaluate_every == 0)
        if final or evaluate or epoch % t.sample_every == 0:
            evaluation.save_samples(epoch, self.step)
        if evaluate:
            before = evaluation.seconds
            if evaluation.evaluate(epoch, self.step):
                self.save_checkpoint(BEST_PT)
            self._say(self.pace.after_evaluation(self.step, evaluation.seconds - before))
        if final and self.evaluator is not None:
            evaluation.check_degradation(epoch)
        if final or epoch % t.checkpoint_every == 0:
            self.recorder.plot_history(self.evaluator)
            self.save_checkpoint(LAST_PT, finished=final)

    @staticmethod
    def _say(line: str | None) -> None:
        if line:
            log.info(line)

    # ------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, name: str, finished: bool = False) -> None:
        self.gan_step.check_weights(self.step)
        self.run.save_checkpoint({
            "format": CHECKPOINT_FORMAT, "config": self.config,
            "sample_shape": list(self.sample_shape),
            "step": self.step, "epoch": self.epoch, "finished": finished,
            **({"classes": self.classes} if self.classes else {}),
            "elapsed": time.perf_counter() - self.start, "rng": rng_state(),
            "threads": torch.get_num_threads(),  # a resume uses them again: another count rounds differently
            **self.gan_step.state_dict(),  # generator, discriminator, opt_g, opt_d, augment
            **({"generator_ema": self.ema.state_dict()} if self.ema else {}),
            "batches": self.batches.state_dict(), "recorder": self.recorder.state_dict(),
            "evaluation": self.evaluation.state_dict(), "doctor": self.doctor.state_dict(),
        }, name)
        self.last_save = time.perf_counter()

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint written by save_checkpoint (as record/checkpoints.py reads it, in the
        current format), bit for bit."""
        self.step, self.epoch = state["step"], state["epoch"]
        self.finished, self.elapsed = state["finished"], state["elapsed"]
        self.gan_step.load_state_dict(state)
        if self.ema:
            self.ema.load_state_dict(state["generator_ema"])
        self.batches.load_state_dict(state["batches"])
        self.recorder.load_state_dict(state["recorder"])
        self.evaluation.load_state_dict(state["evaluation"])
        self.doctor.load_state_dict(state["doctor"])
        set_rng_state(state["rng"])
