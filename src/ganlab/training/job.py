"""One training job: check the config, build the parts it names, train, write the summary."""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ganlab.config import ConfigError, is_conditional, validate
from ganlab.parts.contract import BATCH, check_parts
from ganlab.parts.data import Dataset, DatasetError, load_dataset
from ganlab.parts.networks.build import build_discriminator, build_generator
from ganlab.parts.losses import LazyRegulariser
from ganlab.parts.registry import AUGMENTATIONS, LOSSES, OPTIMIZERS, is_users_part, option_name
from ganlab.quality import Evaluator, build_evaluator
from ganlab.quality.scores import as_loss
from ganlab.record.checkpoints import Checkpoint, sample_shape
from ganlab.record.run_folder import BEST_PT, LAST_PT, RunFolder, RunFolderError
from ganlab.record.summary import Summary
from ganlab.training.batches import BatchStream
from ganlab.training.diagnose import Diagnostician
from ganlab.training.ema import GeneratorEMA
from ganlab.training.scorekeeper import Scorekeeper
from ganlab.training.precision import apply_speedups
from ganlab.training.metrics_log import MetricsLog
from ganlab.training.step import GAN, GANStep, NonFiniteLossError, noise_stream
from ganlab.training.sweep import threads_for
from ganlab.training.trackers import build_logger
from ganlab.training.trainer import Parts, Schedule, Trainer, steps_per_epoch

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA GPU is visible; use trainer.device=auto or cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("trainer.precision=fp16 needs a CUDA GPU; on the CPU use trainer.precision=bf16")


def class_count(cfg: DictConfig, data: Dataset) -> int:
    """The number of classes a conditional GAN is trained on (0: unconditional)."""
    if not is_conditional(cfg):
        return 0
    if data.labels is None:
        raise DatasetError(f"discriminator.conditioning={cfg.discriminator.conditioning} needs classes, but the "
                           f"images of data={option_name(cfg.data)} have none; put each class's images in its own subfolder "
                           f"of data.root, or use discriminator.conditioning=none")
    return data.n_classes


def build_gan(cfg: DictConfig, sample_shape: tuple[int, ...], device: torch.device, n_classes: int = 0) -> GAN:
    generator = build_generator(cfg.generator, sample_shape, n_classes).to(device)
    discriminator = build_discriminator(cfg.discriminator, sample_shape, n_classes).to(device)
    return GAN(generator, discriminator, LOSSES.build(cfg.loss),
               opt_g=OPTIMIZERS.build(cfg.optim, generator.parameters(), OPTIMIZERS.setting(cfg.optim, "g_lr_mult")),
               opt_d=OPTIMIZERS.build(cfg.optim, discriminator.parameters(), OPTIMIZERS.setting(cfg.optim, "d_lr_mult")))


def regulariser(cfg: DictConfig) -> LazyRegulariser:
    """The lazy R1/R2 penalty the loss's settings ask for."""
    return LazyRegulariser(*(LOSSES.setting(cfg.loss, k) for k in ("r1_gamma", "r2_gamma", "reg_every")))


def build_gan_step(cfg: DictConfig, gan: GAN, device: torch.device, rng: torch.Generator) -> GANStep:
    """The D/G step the config asks for: its precision, R1/R2 and augmentation, z drawn from `rng`."""
    t = cfg.trainer
    return GANStep(gan, device, t.precision, regulariser(cfg), AUGMENTATIONS.build(cfg.augment, t.batch_size), rng)


def build_trainer(cfg: DictConfig, gan: GAN, data: Dataset, run: RunFolder, device: torch.device,
                  evaluator: Evaluator | None, purge_step: int | None = None, progress_bar: bool = True) -> Trainer:
    """The one reader of the config below the job: the loop's schedule and its parts, built from `cfg` and
    handed to a Trainer that knows nothing of the config."""
    t, per_epoch = cfg.trainer, steps_per_epoch(len(data), cfg.trainer.batch_size, cfg.trainer.n_critic)
    schedule = Schedule(total_steps=t.steps or t.epochs * per_epoch, steps_per_epoch=per_epoch, log_every=t.log_every,
                        sample_every=t.sample_every, checkpoint_every=t.checkpoint_every,
                        checkpoint_minutes=t.checkpoint_minutes,
                        evaluate_every=cfg.metrics.every * t.n_critic)  # epochs of the data: as often per G step
    diagnostician = Diagnostician(warmup_steps=schedule.total_steps // 10, critic=gan.loss.critic)
    logger = build_logger(cfg, run.path, purge_step)
    classes = data.classes if is_conditional(cfg) else None
    batches = BatchStream(data, t.batch_size, t.n_critic, cfg.seed, t.channels_last, bool(classes))
    gan_step = build_gan_step(cfg, gan, device, noise_stream(cfg.seed))
    ema = GeneratorEMA(gan.generator, t.ema_decay, t.ema_start) if t.ema_decay > 0 else None
    blank = frozenset({*(name for name in ("r1", "r2") if not LOSSES.setting(cfg.loss, f"{name}_gamma")),
                       *(() if cfg.discriminator.get("conditioning") == "acgan" else ("class_loss",))})
    metrics_log = MetricsLog(run, gan_step, diagnostician, logger, per_epoch, cfg.name, blank)
    scorekeeper = Scorekeeper(evaluator, run, data, gan.generator, ema, diagnostician, logger, cfg.seed, cfg.name,
                            n_grid=t.n_grid, n_samples=cfg.metrics.n_samples, classes=classes)
    parts = Parts(gan, batches, gan_step, metrics_log, scorekeeper, diagnostician, ema, logger)
    return Trainer(parts, schedule, run, OmegaConf.to_container(cfg, resolve=True), data.sample_shape, classes,
                   progress_bar)


def check_contract(cfg: DictConfig, data: Dataset, device: torch.device, n_classes: int) -> None:
    """G, D and the loss on a dry batch of the data (parts/contract.py), before a run folder is claimed;
    the random streams are left as they were, so the run is the same with or without the check."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        gan = build_gan(cfg, data.sample_shape, device, n_classes)
        check_parts(gan.generator, gan.discriminator, gan.loss, data.x[:BATCH].to(device),
                    data.labels[:BATCH].to(device) if n_classes else None)


def check_memory(cfg: DictConfig) -> None:
    """Refuse, naming the key, settings whose tensors cannot fit in the memory available now."""
    from ganlab.config.memory import network_values, require, sample_values

    if is_users_part(cfg.data):  # its shape is known once it is loaded
        return
    shape = sample_shape(cfg)
    if "n_samples" in cfg.data:
        require(4 * sample_values(cfg.data.n_samples, shape), f"data.n_samples={cfg.data.n_samples}",
                "lower data.n_samples")
    if not (is_users_part(cfg.generator) or is_users_part(cfg.discriminator)):  # a user's may not build on the meta device
        nets = (network_values(lambda: build_generator(cfg.generator, shape))
                + network_values(lambda: build_discriminator(cfg.discriminator, shape)))
        require(nets, f"generator.width={cfg.generator.width} with discriminator.width={cfg.discriminator.width}",
                "lower the widths or depths")
    require(2 * sample_values(cfg.trainer.n_grid, shape), f"trainer.n_grid={cfg.trainer.n_grid}",
            "lower trainer.n_grid (default 64)")
    if cfg.metrics.enabled:
        require(3 * sample_values(cfg.metrics.n_samples, shape), f"metrics.n_samples={cfg.metrics.n_samples}",
                "lower metrics.n_samples (default 2000)")


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class Job:
    """One run from its config to its summary: everything before training is done by the constructor (checks,
    data, folder, parts, summary "running"), `train` runs it alone, `end` and `close` record how it ended;
    a stack (training/stack.py) builds its members as Jobs and trains their parts together."""

    def __init__(self, cfg: DictConfig, run_dir: Path, resume: Checkpoint | None = None, restart: bool = False,
                 jobs: int = 1, progress_bar: bool = True, queued: bool = False):
        """Train the GAN that `cfg` describes into a new folder `run_dir`, continue it from the checkpoint state
        `resume`, or (`restart`) start over a run killed before its first checkpoint; `jobs` share the machine's
        cores (a parallel sweep: fewer threads, no progress bar); `queued`: a new run in the folder that a sweep
        made for it (it holds Hydra's files alone). The config is never changed: what .hydra/config.yaml says is
        what ran."""
        validate(cfg)
        self.cfg, self.jobs = cfg, jobs
        device = resolve_device(cfg.trainer.device)
        check_precision(cfg.trainer.precision, device)
        threads = threads_for(cfg, jobs)
        if resume is not None and not cfg.trainer.threads and resume.threads:
            threads = resume.threads  # what the run started with (a sweep's job: cores // jobs), for the same numbers
        if threads:
            torch.set_num_threads(threads)
        check_memory(cfg)
        seed_everything(cfg.seed)
        data = load_dataset(cfg.data, cfg.seed).to(device)
        n_classes = class_count(cfg, data)
        if steps_per_epoch(len(data), cfg.trainer.batch_size, cfg.trainer.n_critic) == 0:
            raise ConfigError(f"data={option_name(cfg.data)} has {len(data)} samples, fewer than trainer.batch_size="
                              f"{cfg.trainer.batch_size} x trainer.n_critic={cfg.trainer.n_critic}; lower "
                              f"trainer.batch_size")
        check_contract(cfg, data, device, n_classes)
        evaluator = build_evaluator(cfg, data) if cfg.metrics.enabled else None  # before the folder: it may refuse
        self.run = run = (RunFolder(run_dir).reopen(resume.step) if resume is not None
                          else RunFolder(run_dir).restart() if restart or queued else RunFolder(run_dir).create())
        seed_everything(cfg.seed)  # the same networks whether or not the evaluator was just built
        self.gan = gan = build_gan(cfg, data.sample_shape, device, n_classes)
        apply_speedups(cfg.trainer, gan.generator, gan.discriminator, data.is_image)
        self.trainer = trainer = build_trainer(
            cfg, gan, data, run, device, evaluator, purge_step=resume and resume.step,
            progress_bar=progress_bar and cfg.trainer.progress and jobs == 1)  # parallel jobs' bars would garble
        if resume is not None:
            trainer.restore(resume)
            log.info("resuming %s at step %d (epoch %d)", run.path, resume.step, resume.epoch)
        log.info("run %s in %s on %s (%d torch threads, precision %s)", cfg.name, run.path, device,
                 torch.get_num_threads(), trainer.gan_step.precision.mode)
        log.info("G %s: %s params; D %s: %s params; loss %s; %d steps of %d per epoch",
                 option_name(cfg.generator), f"{n_params(gan.generator):,}", option_name(cfg.discriminator),
                 f"{n_params(gan.discriminator):,}", option_name(cfg.loss), trainer.total_steps,
                 trainer.steps_per_epoch)
        self.clock, now = time.perf_counter(), datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.summary = (Summary.read(run.path, strict=False) if resume is not None else Summary()).start(
            now, cfg.name, str(device), trainer.gan_step.precision.mode, trainer.total_steps,
            resumed_at=resume.step if resume is not None else 0 if restart else None)
        self.summary.write(run.path)

    def train(self) -> dict[str, Any]:
        """Train it alone (Ctrl-C and SIGTERM checkpoint and stop it); its summary."""
        try:
            with stop_on_signals(self.trainer, worker=self.jobs > 1):
                self.trainer.fit()
            self.completed()
        except NonFiniteLossError as e:  # a result, not a crash: stop cleanly, keep the last good checkpoint
            self.diverged(e)
        except (KeyboardInterrupt, Exception) as e:
            self.stopped(e)
            raise
        finally:
            self.close()
        return self.summary

    def completed(self) -> None:
        self.summary.end("completed")
        if self.trainer.evaluator is not None and self.trainer.scorekeeper.best:
            self.summary["at_the_floor"] = self.trainer.scorekeeper.floor_check()

    def diverged(self, error: NonFiniteLossError) -> None:
        trainer, run = self.trainer, self.run
        diagnosis = trainer.diagnostician.divergence(trainer.step, trainer.step / trainer.steps_per_epoch, str(error),
                                                     _relative(run, run.checkpoints / LAST_PT))
        log.error("diagnosis: %s%s", f"{self.cfg.name} seed {self.cfg.seed}: " if self.summary.get("stack") else "",
                  diagnosis.line())
        self.summary.end("diverged", str(error))

    def stopped(self, error: BaseException) -> None:
        """Ctrl-C or SIGTERM (interrupted), or an error (failed)."""
        if isinstance(error, KeyboardInterrupt):
            self.summary.end("interrupted")
        else:
            self.summary.end("failed", f"{error.__class__.__name__}: {error}")

    def close(self) -> None:
        """What the run reached into its summary; the folder let go of."""
        trainer, run, summary = self.trainer, self.run, self.summary
        record_progress(summary, trainer, run, trainer.elapsed + time.perf_counter() - self.clock)
        try:
            summary.write(run.path)
        except RunFolderError as e:  # the disk is full or read-only: say so, keep the original error
            log.error("%s", e)
        if trainer.logger:
            trainer.logger.close(summary["status"])
        run.release()
        log.info("%s after %d steps (%d epochs) in %.1f s", summary["status"], summary["steps_done"],
                 summary["epochs_done"], summary["duration_s"])


def run_job(cfg: DictConfig, run_dir: Path, resume: Checkpoint | None = None,
            restart: bool = False, jobs: int = 1) -> dict[str, Any]:
    """Train the GAN that `cfg` describes into `run_dir` (Job's arguments); return the run's summary."""
    return Job(cfg, run_dir, resume, restart, jobs).train()


@contextmanager
def stop_on_signals(trainer: Trainer, worker: bool = False) -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM ask the trainer to checkpoint after its current step and stop; so
    does, for a parallel sweep's `worker`, the end of the sweep's process (killed, say): no job
    outlives its sweep."""
    def ask_to_stop(signum, frame):
        trainer.stop_signal = signal.Signals(signum).name

    done, sweep = threading.Event(), os.getppid()

    def watch_the_sweep() -> None:
        while not done.wait(1.0):
            if os.getppid() != sweep:  # the sweep's process ended: this worker was handed to another parent
                trainer.stop_signal = "the sweep's end"
                return

    if worker:
        threading.Thread(target=watch_the_sweep, daemon=True).start()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        done.set()
        return
    previous = {s: signal.signal(s, ask_to_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        done.set()
        for s, handler in previous.items():
            signal.signal(s, handler)


def record_progress(summary: Summary, trainer: Trainer, run: RunFolder, seconds: float) -> None:
    """What the run reached, into its summary (its shape: record/summary.py)."""
    gan, evaluator, scorekeeper = trainer.gan, trainer.evaluator, trainer.scorekeeper
    quality = None
    if evaluator is not None:
        best = scorekeeper.best
        quality = Summary.quality_record(
            evaluator.primary, scorekeeper.last_eval, best, _best_vs_last(best, scorekeeper.last_eval),
            tied_with_best(run, best), _relative(run, run.checkpoints / BEST_PT), evaluator.floor,
            {**evaluator.info, "generator": "ema" if trainer.ema else "raw"}, scorekeeper.seconds, seconds,
            weakest_class(best["per_class"]) if best.get("per_class") else None)
    summary.progress(trainer.epochs_done, trainer.step, seconds, trainer.metrics_log.last_row,
                     _relative(run, run.sample_path(trainer.epochs_done)), _relative(run, run.checkpoints / LAST_PT),
                     {"generator": n_params(gan.generator), "discriminator": n_params(gan.discriminator)},
                     trainer.diagnostician.as_list(), quality)


def weakest_class(per_class: list[dict]) -> dict:
    """The class a conditional G draws worst: the highest fd to the real images of that class."""
    scored = [c for c in per_class if c["fd"] == c["fd"]] or per_class  # fd is NaN for classes never drawn
    return max(scored, key=lambda c: c["fd"])


def _best_vs_last(best: dict, last: dict) -> dict | None:
    """How much worse the last evaluation is than the best (0 when the last is the best)."""
    metric = best.get("metric")
    if not metric or metric not in last:
        return None
    gap = last[metric] - best["score"]
    return {"best_epoch": best["epoch"], "last_epoch": last["epoch"], "gap": round(gap, 6),
            "relative": round(gap / best["score"], 4) if best["score"] > 0 else None}


def tied_with_best(run: RunFolder, best: dict) -> list[float]:
    """The epochs of the other evaluations whose primary score is within twice the standard error of its
    difference from the best's (quality.csv): the best epoch is one pick among these."""
    metric = best.get("metric")
    columns = run.read_columns(run.quality_csv) if metric else {}
    if metric not in columns or "epoch" not in columns or best.get("score") is None:
        return []
    score, se = best["score"], best.get("scores", {}).get(f"{metric}_se") or 0.0
    ses = [s if s == s else 0.0 for s in columns.get(f"{metric}_se", [0.0] * len(columns[metric]))]
    return [e for e, v, s in zip(columns["epoch"], columns[metric], ses) if e != best.get("epoch") and v == v
            and as_loss(metric, v) - as_loss(metric, score) <= 2 * math.hypot(se, s)]


def _relative(run: RunFolder, path: Path) -> str | None:
    return str(path.relative_to(run.path)) if path.exists() else None
