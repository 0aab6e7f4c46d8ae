"""One training loop for every loss: n_critic D steps, then one G step, measured on the way.

Measurements stay on the device and are averaged over `log_every` G steps; the only host sync
is the metrics.csv row at each logging step. At the end of an epoch: the sample grid, the quality
evaluation (quality.csv, best.pt), the checkpoint; diagnoses are checked as rows arrive.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from omegaconf import DictConfig
from tqdm import tqdm

from ganlab.checkpoints import rng_state, set_rng_state
from ganlab.data import Dataset
from ganlab.diagnose import Diagnostician
from ganlab.ema import GeneratorEMA
from ganlab.loggers import build_logger
from ganlab.losses import GANLoss, LazyRegulariser, WGANGPLoss
from ganlab.plots import plot_history, save_image_grid, save_points_plot
from ganlab.quality import Evaluator
from ganlab.registry import AUGMENTATIONS
from ganlab.run_folder import RunFolder, atomic_write
from ganlab.speed import Precision

log = logging.getLogger(__name__)

STATS = ("loss_d", "loss_g", "d_real", "d_fake", "acc_real", "acc_fake", "grad_norm_d", "grad_norm_g",
         "gp", "wasserstein", "r1", "r2")
POINT_GRID = 1000  # generated points drawn in each scatter plot of 1-D/2-D data


class NonFiniteLossError(FloatingPointError):
    """A loss or gradient became NaN or infinite: training cannot continue from here."""


@dataclass
class GAN:
    generator: nn.Module
    discriminator: nn.Module
    loss: GANLoss
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


@dataclass
class Progress:
    step: int = 0  # G steps done
    epoch: int = 0  # epochs completed
    last_row: dict = field(default_factory=dict)  # the latest metrics.csv row
    last_eval: dict = field(default_factory=dict)  # the latest quality.csv row
    best: dict = field(default_factory=dict)  # the best evaluation: epoch, step, score, scores, samples
    eval_seconds: float = 0.0  # wall time spent on quality evaluations


def requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


def steps_per_epoch(n_samples: int, trainer: DictConfig) -> int:
    """G steps in one pass over the data: each takes n_critic full batches."""
    return n_samples // trainer.batch_size // trainer.n_critic


class Trainer:
    def __init__(self, gan: GAN, data: Dataset, run: RunFolder, cfg: DictConfig, device: torch.device,
                 evaluator: Evaluator | None = None, purge_step: int | None = None, progress_bar: bool = True):
        self.gan, self.data, self.run, self.cfg, self.device = gan, data, run, cfg, device
        self.t, self.evaluator = cfg.trainer, evaluator
        self.progress, self.progress_bar = Progress(), progress_bar
        self.order_rng = torch.Generator().manual_seed(cfg.seed)  # the data order
        z_rng = torch.Generator().manual_seed(cfg.seed + 1)
        n_fixed = self.t.n_grid if data.is_image else POINT_GRID
        self.fixed_noise = torch.randn(n_fixed, gan.generator.z_dim, generator=z_rng).to(device)
        self.eval_noise = torch.randn(cfg.metrics.n_samples, gan.generator.z_dim, generator=z_rng).to(device)
        self.steps_per_epoch = steps_per_epoch(len(data), self.t)
        self.total_steps = self.t.steps or self.t.epochs * self.steps_per_epoch
        self._wgan = isinstance(gan.loss, WGANGPLoss)
        self.doctor = Diagnostician(warmup_steps=self.total_steps // 10, critic=self._wgan)
        self.logger = build_logger(cfg, run.path, purge_step)
        self._sums = torch.zeros(len(STATS), device=device)
        self._count = 0
        self.order: torch.Tensor | None = None  # this epoch's shuffled sample order
        self.cursor = 0  # where the next batch starts in it
        self.elapsed = 0.0  # seconds of training before this session (a resumed run)
        self.stop_signal: str | None = None  # set by SIGINT / SIGTERM: checkpoint and stop
        self.finished = False  # the last step's end-of-run work is done (a checkpoint of a run's end)
        self.precision = Precision(self.t.precision, device)
        self.regulariser = LazyRegulariser(cfg.loss.r1_gamma, cfg.loss.r2_gamma, cfg.loss.reg_every)
        self.augment = AUGMENTATIONS.build(cfg.augment, self.t.batch_size)  # None: D sees the images as they are
        self.ema = (GeneratorEMA(gan.generator, self.t.ema_decay, self.t.ema_start) if self.t.ema_decay > 0
                    else None)

    # ------------------------------------------------------------------------------ loop
    def fit(self) -> Progress:
        p, t = self.progress, self.t
        self.start = time.perf_counter() - self.elapsed
        self.last_save = time.perf_counter()
        if self.finished and p.step >= self.total_steps:  # killed after its last checkpoint: nothing left
            return p
        if self.finished and self.order is not None:  # a steps-limited end counted its partial epoch as
            p.epoch -= 1  # done; the extended run goes on with that epoch
        bar = tqdm(total=self.total_steps, initial=p.step, unit="step", dynamic_ncols=True,
                   disable=not self.progress_bar)
        with bar:
            while p.step < self.total_steps:
                reals = self.next_batches()
                if reals is None:  # this epoch's data is used up
                    p.epoch += 1
                    self.end_of_epoch(final=False)
                    continue
                self._sums += self.train_step(reals)
                self._count += 1
                p.step += 1
                if self.ema:
                    self.ema.update(self.gan.generator, p.step)
                bar.update()
                if p.step % t.log_every == 0:
                    bar.set_postfix(self.log_row(), refresh=False)
                if self.stop_signal:
                    self.save_checkpoint("last.pt")
                    raise KeyboardInterrupt(self.stop_signal)
                if time.perf_counter() - self.last_save > 60 * t.checkpoint_minutes:
                    self.save_checkpoint("last.pt")  # a kill never loses more than checkpoint_minutes
            if self.order is not None and self.cursor + t.batch_size * t.n_critic > len(self.order):
                self.order = None  # the last epoch ended with the data: a longer resume starts a new one
            p.epoch += 1
            self.end_of_epoch(final=True)
        return p

    def next_batches(self) -> list[torch.Tensor] | None:
        """The next n_critic real batches of this epoch's shuffled order; None when it is used up."""
        size = self.t.batch_size * self.t.n_critic
        if self.order is None:
            self.order = torch.randperm(len(self.data), generator=self.order_rng).to(self.data.x.device)
            self.cursor = 0
        if self.cursor + size > len(self.order):
            self.order = None
            return None
        batch = self.data.x[self.order[self.cursor:self.cursor + size]]
        if self.t.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        self.cursor += size
        return list(batch.split(self.t.batch_size))

    def train_step(self, reals: list[torch.Tensor]) -> torch.Tensor:
        """n_critic D steps (one per real batch), then one G step on the last D step's fakes; the
        step's measurements, stacked in STATS order (one tensor, so averaging costs no host sync)."""
        g, amp = self.gan, self.precision
        first = self.progress.step * len(reals)  # the number of this step's first D step
        for i, real in enumerate(reals[:-1]):
            with torch.no_grad(), amp.autocast():
                fake = g.generator(self.noise(len(real)))
            self.d_step(real, fake, first + i)
        with amp.autocast():
            fake = g.generator(self.noise(len(reals[-1])))
        stats = self.d_step(reals[-1], fake.detach(), first + len(reals) - 1)

        requires_grad(g.discriminator, False)
        with amp.autocast():
            loss_g = g.loss.g_loss(g.discriminator(self.augmented(fake)).float())
        stats["grad_norm_g"] = amp.backward_and_step(loss_g, g.opt_g, g.generator, "g")
        requires_grad(g.discriminator, True)
        stats["loss_g"] = loss_g.detach()
        return torch.stack([stats[name] for name in STATS])

    def d_step(self, real: torch.Tensor, fake: torch.Tensor, index: int) -> dict[str, torch.Tensor]:
        g = self.gan
        real, fake = self.augmented(real), self.augmented(fake)
        with self.precision.autocast():
            real_s, fake_s = g.discriminator(real).float(), g.discriminator(fake).float()
            loss_d = g.loss.d_loss(real_s, fake_s)
            gp = g.loss.penalty(g.discriminator, real, fake)
            r1, r2 = self.regulariser(g.discriminator, real, fake, index)  # lazy: zero between its steps
        norm_d = self.precision.backward_and_step(loss_d + gp + r1 + r2, g.opt_d, g.discriminator, "d")
        with torch.no_grad():
            r, f = g.loss.to_readout(real_s), g.loss.to_readout(fake_s)
            cut = (r.mean() + f.mean()) / 2 if g.loss.threshold is None else g.loss.threshold
            if self.augment:
                self.augment.observe(torch.sign(r - (g.loss.threshold or 0.0)))
            return {"loss_d": loss_d.detach(), "d_real": r.mean(), "d_fake": f.mean(),
                    "acc_real": (r > cut).float().mean(), "acc_fake": (f <= cut).float().mean(),
                    "grad_norm_d": norm_d, "gp": gp.detach(), "wasserstein": real_s.mean() - fake_s.mean(),
                    "r1": r1.detach(), "r2": r2.detach()}

    def augmented(self, images: torch.Tensor) -> torch.Tensor:
        return self.augment(images) if self.augment else images

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.gan.generator.z_dim, device=self.device)

    # ------------------------------------------------------------------------- recording
    def log_row(self) -> dict[str, float]:
        """Average the measurements since the last row, append it to metrics.csv (one sync)."""
        if self._count == 0:
            return {}
        means = (self._sums / self._count).tolist()
        self._sums.zero_()
        self._count = 0
        p = self.progress
        stats = {k: float(f"{v:.6g}") for k, v in zip(STATS, means)}
        row = {"step": p.step, "epoch": round(p.step / self.steps_per_epoch, 4), **stats,
               "lr_d": self.gan.opt_d.param_groups[0]["lr"], "lr_g": self.gan.opt_g.param_groups[0]["lr"],
               "time_s": round(time.perf_counter() - self.start, 3)}
        if not self._wgan:
            row["gp"] = row["wasserstein"] = ""
        adaptive = self.augment is not None and self.augment.adaptive
        row["aug_p"] = self.augment.p if self.augment else ""
        row["ada_rt"] = round(self.augment.rt, 4) if adaptive and math.isfinite(self.augment.rt) else ""
        for name in ("r1", "r2"):  # averaged over steps: the lazy penalty's strength per D step
            if not self.cfg.loss[f"{name}_gamma"]:
                row[name] = ""
        self.run.append_row(self.run.metrics_csv, row)
        p.last_row = row
        if self.logger:
            self.logger.metrics(row)
        bad = [k for k in ("loss_d", "loss_g", "grad_norm_d", "grad_norm_g") if not math.isfinite(stats[k])]
        if bad:
            raise NonFiniteLossError(f"non-finite {', '.join(bad)} at step {p.step}")
        for diagnosis in self.doctor.on_metrics(row):
            log.warning("diagnosis: %s", diagnosis.line())
        return {"loss_d": f"{stats['loss_d']:.3f}", "loss_g": f"{stats['loss_g']:.3f}"}

    def end_of_epoch(self, final: bool) -> None:
        p, t = self.progress, self.t
        if final:
            self.log_row()
        evaluate = self.evaluator is not None and (final or p.epoch % self.cfg.metrics.every == 0)
        if final or evaluate or p.epoch % t.sample_every == 0:
            self.save_samples()
        if evaluate:
            self.evaluate()
        if final and self.evaluator is not None:
            for diagnosis in self.doctor.degradation(p.best, p.last_eval, p.epoch):
                log.warning("diagnosis: %s", diagnosis.line())
        if final or p.epoch % t.checkpoint_every == 0:
            self.plot_history()
            self.save_checkpoint("last.pt", finished=final)

    def plot_history(self) -> None:
        metrics, quality = (self.run.read_columns(path) for path in (self.run.metrics_csv, self.run.quality_csv))
        primary = self.evaluator.primary if self.evaluator else None
        floor = self.evaluator.floor.get(primary) if self.evaluator else None
        atomic_write(self.run.history_png, lambda tmp: plot_history(metrics, tmp, self.cfg.name, "png", quality,
                                                                    primary, floor))

    @torch.no_grad()
    def generate(self, noise: torch.Tensor, batch: int = 500) -> torch.Tensor:
        """Samples for `noise` from the EMA generator when there is one, else from G, in eval mode
        (batch norm uses running statistics)."""
        if self.ema:
            sampler = self.ema.sampler()
            return torch.cat([sampler(part) for part in noise.split(batch)])
        G = self.gan.generator
        G.eval()
        samples = torch.cat([G(part) for part in noise.split(batch)])
        G.train()
        return samples

    def save_samples(self) -> None:
        samples, path = self.generate(self.fixed_noise), self.run.sample_path(self.progress.epoch)
        if self.logger:
            self.logger.samples(samples, self.progress.step)
        title = f"{self.cfg.name}, epoch {self.progress.epoch}"
        atomic_write(path, lambda tmp: save_image_grid(samples, tmp, fmt="png") if self.data.is_image
                     else save_points_plot(samples, self.data.x, tmp, title, fmt="png"))

    def evaluate(self) -> None:
        """Score G's samples from the fixed evaluation noise; keep best.pt; check for mode collapse."""
        p, start = self.progress, time.perf_counter()
        samples = self.generate(self.eval_noise)
        if not torch.isfinite(samples).all():
            raise NonFiniteLossError(f"non-finite generated samples at step {p.step}")
        scores = self.evaluator.score(samples)
        row = {"epoch": p.epoch, "step": p.step, **{k: float(f"{v:.6g}") for k, v in scores.items()}}
        p.eval_seconds += time.perf_counter() - start
        self.run.append_row(self.run.quality_csv, row)
        if self.logger:
            self.logger.quality(row)
        p.last_eval = row
        primary = self.evaluator.primary
        log.info("epoch %d: %s %.4g", p.epoch, primary, scores[primary])
        if not p.best or scores[primary] < p.best["score"]:
            p.best = {"epoch": p.epoch, "step": p.step, "metric": primary, "score": row[primary], "scores": row,
                      "samples": str(self.run.sample_path(p.epoch).relative_to(self.run.path))}
            self.save_checkpoint("best.pt")
            if hasattr(self.evaluator, "closest_pairs"):  # images: is the best generator copying?
                pairs = self.evaluator.closest_pairs(samples)
                atomic_write(self.run.path / "closest_pairs.png",
                             lambda tmp: save_image_grid(pairs, tmp, fmt="png", nrow=4))
        for diagnosis in self.doctor.on_quality(row):
            log.warning("diagnosis: %s", diagnosis.line())

    def save_checkpoint(self, name: str, finished: bool = False) -> None:
        from omegaconf import OmegaConf

        g, p = self.gan, self.progress
        params = [q.detach().sum() for net in (g.generator, g.discriminator) for q in net.parameters()]
        if not torch.isfinite(torch.stack(params)).all():  # never overwrite a good checkpoint with NaNs
            raise NonFiniteLossError(f"non-finite weights at step {p.step}")
        self.run.save_checkpoint({
            "generator": g.generator.state_dict(), "discriminator": g.discriminator.state_dict(),
            "opt_g": g.opt_g.state_dict(), "opt_d": g.opt_d.state_dict(),
            "step": p.step, "epoch": p.epoch, "fixed_noise": self.fixed_noise.cpu(), "best": p.best,
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            # Everything else that decides what comes next, so a resumed run continues bit for bit.
            "progress": {"last_row": p.last_row, "last_eval": p.last_eval, "eval_seconds": p.eval_seconds},
            "rng": rng_state(), "order_rng": self.order_rng.get_state(),
            "order": None if self.order is None else self.order.cpu(), "cursor": self.cursor,
            "sums": self._sums.cpu(), "count": self._count, "elapsed": time.perf_counter() - self.start,
            "doctor": self.doctor.state(), "finished": finished,
            **({"generator_ema": self.ema.sampler().state_dict()} if self.ema else {}),
            **({"augment": self.augment.state_dict()} if self.augment else {}),
        }, name)
        self.last_save = time.perf_counter()

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint written by save_checkpoint."""
        g, p = self.gan, self.progress
        g.generator.load_state_dict(state["generator"])
        g.discriminator.load_state_dict(state["discriminator"])
        g.opt_g.load_state_dict(state["opt_g"])
        g.opt_d.load_state_dict(state["opt_d"])
        p.step, p.epoch, p.best = state["step"], state["epoch"], state["best"]
        p.last_row, p.last_eval = state["progress"]["last_row"], state["progress"]["last_eval"]
        p.eval_seconds = state["progress"]["eval_seconds"]
        self.fixed_noise = state["fixed_noise"].to(self.device)
        self.order_rng.set_state(state["order_rng"])
        self.order = None if state["order"] is None else state["order"].to(self.data.x.device)
        self.cursor, self._count, self.elapsed = state["cursor"], state["count"], state["elapsed"]
        self._sums = state["sums"].to(self.device)
        self.doctor.load_state(state["doctor"])
        self.finished = state["finished"]
        if self.ema:
            self.ema.load_state_dict(state["generator_ema"])
        if self.augment:
            self.augment.load_state_dict(state["augment"])
        set_rng_state(state["rng"])
