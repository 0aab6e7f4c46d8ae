"""One training loop for every loss: n_critic D steps, then one G step, measured on the way.

Each concern owns its state and checkpoints it with state_dict / load_state_dict: the batch stream
(batches.py), the D/G step with its networks, optimisers and augmentation (step.py), the
metrics.csv rows (recording.py), grids and quality scores (evaluation.py) and the EMA generator
(ema.py). The loop below only orders them; the checkpoint is their states side by side.
"""

from __future__ import annotations

import logging
import time

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from ganlab.config import is_conditional
from ganlab.parts.data import Dataset
from ganlab.quality import Evaluator
from ganlab.training.diagnose import Diagnostician
from ganlab.record.checkpoints import rng_state, set_rng_state
from ganlab.record.run_folder import BEST_PT, LAST_PT, RunFolder
from ganlab.training import cost
from ganlab.training.batches import BatchStream
from ganlab.training.ema import GeneratorEMA
from ganlab.training.evaluation import Evaluation
from ganlab.training.recording import Recorder
from ganlab.training.step import GAN, GANStep
from ganlab.training.trackers import build_logger

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 2  # 1: ganlab before the parts had their own state (read by upgraded_checkpoint)


def steps_per_epoch(n_samples: int, trainer: DictConfig) -> int:
    """G steps in one pass over the data: each takes n_critic full batches."""
    return n_samples // trainer.batch_size // trainer.n_critic


class Trainer:
    def __init__(self, gan: GAN, data: Dataset, run: RunFolder, cfg: DictConfig, device: torch.device,
                 evaluator: Evaluator | None = None, purge_step: int | None = None, progress_bar: bool = True):
        t = self.t = cfg.trainer
        self.gan, self.run, self.cfg, self.progress_bar = gan, run, cfg, progress_bar
        self.step = 0  # G steps done
        self.epoch = 0  # epochs completed
        self.steps_per_epoch = steps_per_epoch(len(data), t)
        self.sample_shape = data.sample_shape
        self.total_steps = t.steps or t.epochs * self.steps_per_epoch
        self.evaluate_every = cfg.metrics.every * t.n_critic  # epochs of the data: as often per G step for any n_critic
        self.elapsed = 0.0  # seconds of training before this session (a resumed run)
        self.stop_signal: str | None = None  # set by SIGINT / SIGTERM: checkpoint and stop
        self.finished = False  # the last step's end-of-run work is done (a checkpoint of a run's end)

        self.doctor = Diagnostician(warmup_steps=self.total_steps // 10, critic=gan.loss.critic)
        self.logger = build_logger(cfg, run.path, purge_step)
        self.classes = data.classes if is_conditional(cfg) else None  # a conditional GAN's, by label
        self.batches = BatchStream(data, t.batch_size, t.n_critic, cfg.seed, t.channels_last, bool(self.classes))
        self.gan_step = GANStep(gan, cfg, device)
        self.ema = GeneratorEMA(gan.generator, t.ema_decay, t.ema_start) if t.ema_decay > 0 else None
        self.recorder = Recorder(run, cfg, self.gan_step, self.doctor, self.logger, self.steps_per_epoch)
        self.evaluation = Evaluation(evaluator, run, cfg, data, gan.generator, self.ema, self.doctor, self.logger)

    @property
    def evaluator(self) -> Evaluator | None:
        return self.evaluation.evaluator

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    # ------------------------------------------------------------------------------ loop
    def fit(self) -> None:
        t = self.t
        self.start = time.perf_counter() - self.elapsed
        self.last_save = time.perf_counter()
        if self.finished and self.step >= self.total_steps:  # killed after its last checkpoint: nothing left
            return
        if self.finished and self.batches.order is not None:  # a steps-limited end counted its partial
            self.epoch -= 1  # epoch as done; the extended run goes on with that epoch
        n_evaluations = cost.evaluations(self.total_steps, self.steps_per_epoch, self.evaluate_every) \
            if self.evaluator is not None else 0
        log.info(cost.plan(self.total_steps, self.steps_per_epoch, t.n_critic, n_evaluations, self.gan_step.device,
                           torch.get_num_threads(), self.gan_step.precision.mode))
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
        t, epoch, evaluation = self.t, self.epoch, self.evaluation
        if final:
            self.recorder.write_row(self.step, self.seconds())
        evaluate = self.evaluator is not None and (final or epoch % self.evaluate_every == 0)
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
            "format": CHECKPOINT_FORMAT, "config": OmegaConf.to_container(self.cfg, resolve=True),
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
        """Continue from a checkpoint written by save_checkpoint, bit for bit."""
        state = upgraded_checkpoint(state)
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


def upgraded_checkpoint(state: dict) -> dict:
    """A checkpoint in the current format; format 1 (flat keys) is regrouped by part."""
    if state.get("format", 1) >= CHECKPOINT_FORMAT:
        return state
    progress = state["progress"]
    return {**state, "batches": {"rng": state["order_rng"], "order": state["order"], "cursor": state["cursor"]},
            "recorder": {"sums": state["sums"], "count": state["count"], "last_row": progress["last_row"]},
            "evaluation": {"fixed_noise": state["fixed_noise"], "best": state["best"],
                           "last_eval": progress["last_eval"], "seconds": progress["eval_seconds"]}}
