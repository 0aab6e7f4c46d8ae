"""One training job: check the config, build the parts it names, train, write the summary."""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ganlab.config import ConfigError, validate
from ganlab.data import load_dataset
from ganlab.losses import build_loss
from ganlab.models import build_discriminator, build_generator
from ganlab.optim import build_optimizer
from ganlab.run_folder import RunFolder
from ganlab.trainer import GAN, Trainer, steps_per_epoch

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


def build_gan(cfg: DictConfig, sample_shape: tuple[int, ...], device: torch.device) -> GAN:
    generator = build_generator(cfg.generator, sample_shape).to(device)
    discriminator = build_discriminator(cfg.discriminator, sample_shape).to(device)
    return GAN(generator, discriminator, build_loss(cfg.loss),
               opt_g=build_optimizer(cfg.optim, generator.parameters(), cfg.optim.g_lr_mult),
               opt_d=build_optimizer(cfg.optim, discriminator.parameters(), cfg.optim.d_lr_mult))


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train the GAN that `cfg` describes into `run_dir`; return the run's summary."""
    validate(cfg)
    device = resolve_device(cfg.trainer.device)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    seed_everything(cfg.seed)
    data = load_dataset(cfg.data, cfg.seed).to(device)
    if steps_per_epoch(len(data), cfg.trainer) == 0:
        raise ConfigError(f"data={cfg.data.name} has {len(data)} samples, fewer than trainer.batch_size="
                          f"{cfg.trainer.batch_size} x trainer.n_critic={cfg.trainer.n_critic}; lower trainer.batch_size")
    run = RunFolder(run_dir).create()
    gan = build_gan(cfg, data.sample_shape, device)
    trainer = Trainer(gan, data, run, cfg, device)
    log.info("run %s in %s on %s (%d torch threads)", cfg.name, run.path, device, torch.get_num_threads())
    log.info("G %s: %s params; D %s: %s params; loss %s; %d steps of %d per epoch",
             cfg.generator.name, f"{n_params(gan.generator):,}", cfg.discriminator.name,
             f"{n_params(gan.discriminator):,}", cfg.loss.name, trainer.total_steps, trainer.steps_per_epoch)

    started, clock = datetime.now(timezone.utc), time.perf_counter()
    summary: dict[str, Any] = {"name": cfg.name, "status": "running", "started": started.isoformat(timespec="seconds"),
                               "device": str(device), "total_steps": trainer.total_steps}
    run.write_summary(summary)
    try:
        trainer.fit()
        summary["status"] = "completed"
    except KeyboardInterrupt:
        summary["status"] = "interrupted"
        raise
    except Exception as e:
        summary.update(status="failed", error=f"{e.__class__.__name__}: {e}")
        raise
    finally:
        p = trainer.progress
        summary.update(epochs_done=p.epoch, steps_done=p.step, duration_s=round(time.perf_counter() - clock, 2),
                       final=p.last_row, last_samples=_relative(run, run.sample_path(p.epoch)),
                       checkpoint=_relative(run, run.checkpoints / "last.pt"),
                       params={"generator": n_params(gan.generator), "discriminator": n_params(gan.discriminator)})
        run.write_summary(summary)
        log.info("%s after %d steps (%d epochs) in %.1f s", summary["status"], p.step, p.epoch, summary["duration_s"])
    return summary


def _relative(run: RunFolder, path: Path) -> str | None:
    return str(path.relative_to(run.path)) if path.exists() else None


def config_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
