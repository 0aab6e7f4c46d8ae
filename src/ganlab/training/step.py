"""One training step: n_critic D steps, then one G step on the last D step's fakes, measured.

Real and generated images pass through the augmentation (if any) before D in both steps; the lazy
R1/R2 penalty joins D's loss on its steps; precision (autocast, gradient scaling) wraps both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
from omegaconf import DictConfig

from ganlab.augment import DiffAugment
from ganlab.losses import GANLoss, LazyRegulariser
from ganlab.registry import AUGMENTATIONS
from ganlab.speed import Precision

STATS = ("loss_d", "loss_g", "d_real", "d_fake", "acc_real", "acc_fake", "grad_norm_d", "grad_norm_g",
         "gp", "wasserstein", "r1", "r2")


class NonFiniteLossError(FloatingPointError):
    """A loss or gradient became NaN or infinite: training cannot continue from here."""


@dataclass
class GAN:
    generator: nn.Module
    discriminator: nn.Module
    loss: GANLoss
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


class GANStep:
    def __init__(self, gan: GAN, cfg: DictConfig, device: torch.device):
        self.gan, self.device = gan, device
        self.precision = Precision(cfg.trainer.precision, device)
        self.regulariser = LazyRegulariser(cfg.loss.r1_gamma, cfg.loss.r2_gamma, cfg.loss.reg_every)
        self.augment: Optional[DiffAugment] = AUGMENTATIONS.build(cfg.augment, cfg.trainer.batch_size)

    def __call__(self, reals: list[torch.Tensor], step: int) -> torch.Tensor:
        """G step number `step` with its D steps; the measurements stacked in STATS order (one
        tensor on the device, so averaging them costs no host sync)."""
        g, amp = self.gan, self.precision
        first = step * len(reals)  # the number of this step's first D step
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

    def check_weights(self, step: int) -> None:
        """Refuse to checkpoint NaN weights over a good checkpoint."""
        nets = (self.gan.generator, self.gan.discriminator)
        if not torch.isfinite(torch.stack([q.detach().sum() for net in nets for q in net.parameters()])).all():
            raise NonFiniteLossError(f"non-finite weights at step {step}")

    def state_dict(self) -> dict:
        g = self.gan
        return {"generator": g.generator.state_dict(), "discriminator": g.discriminator.state_dict(),
                "opt_g": g.opt_g.state_dict(), "opt_d": g.opt_d.state_dict(),
                **({"augment": self.augment.state_dict()} if self.augment else {})}

    def load_state_dict(self, state: dict) -> None:
        g = self.gan
        g.generator.load_state_dict(state["generator"])
        g.discriminator.load_state_dict(state["discriminator"])
        g.opt_g.load_state_dict(state["opt_g"])
        g.opt_d.load_state_dict(state["opt_d"])
        if self.augment:
            self.augment.load_state_dict(state["augment"])
