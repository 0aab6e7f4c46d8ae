"""One training step: n_critic D steps, then one G step on the last D step's fakes, measured.

Real and generated images pass through the augmentation (if any) before D in both steps; the lazy
R1/R2 penalty joins D's loss on its steps; precision (autocast, gradient scaling) wraps both. In a
conditional GAN each fake takes the class of the real image beside it in the batch, so the fakes
follow the data's class frequencies and every D term (penalties included) sees one class per pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from ganlab.parts.augment import DiffAugment
from ganlab.parts.losses import GANLoss, LazyRegulariser, WGANGPLoss
from ganlab.parts.networks.layers import stream_dropouts
from ganlab.training.precision import Precision

STATS = ("loss_d", "loss_g", "d_real", "d_fake", "acc_real", "acc_fake", "grad_norm_d", "grad_norm_g",
         "gp", "wasserstein", "r1", "r2", "class_loss")


def noise_stream(seed: int) -> torch.Generator:
    """The run's own stream of G's noise z, apart from torch's global one and from the data order's (seeded
    with `seed`): a member of a stack draws the same z as its solo run."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, NOISE_STREAM]).generate_state(1)[0]))


NOISE_STREAM = 1  # the noise stream's number beside the run's seed


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
    def __init__(self, gan: GAN, device: torch.device, precision: str = "32",
                 regulariser: Optional[LazyRegulariser] = None, augment: Optional[DiffAugment] = None,
                 rng: Optional[torch.Generator] = None):
        """`precision`: trainer.precision (32, bf16, fp16, auto); `regulariser`: the lazy R1/R2 penalty (none
        by default); `augment`: what D's inputs pass through (none by default); `rng`: the noise's random
        stream, and WGAN-GP's interpolation weights', the augmentations' and the dropout masks' (noise_stream(seed)
        in a run; torch's global one by default, and in a run whose checkpoint is older than format 4; the
        masks alone in one older than format 5)."""
        self.gan, self.device, self.rng = gan, device, rng
        self.global_dropout = False  # a run checkpointed before format 5 draws its dropout masks from torch's stream
        self.draw_dropout_from(rng)
        self.precision = Precision(precision, device)
        self.regulariser = regulariser or LazyRegulariser(0.0, 0.0, 16)
        self.augment = augment
        self.zero = torch.zeros((), device=device)  # the class loss of an unconditional GAN

    def __call__(self, reals: list[tuple[torch.Tensor, torch.Tensor | None]], step: int) -> torch.Tensor:
        """G step number `step` with its D steps on the real batches (images, classes or None); the
        measurements stacked in STATS order (one tensor on the device: averaging them costs no sync)."""
        gan, amp = self.gan, self.precision
        first = step * len(reals)  # the number of this step's first D step
        for i, (real, y) in enumerate(reals[:-1]):
            with torch.no_grad(), amp.autocast():
                fake = self.generate(len(real), y)
            self.d_step(real, fake, y, first + i)
        real, y = reals[-1]
        with amp.autocast():
            fake = self.generate(len(real), y)
        stats = self.d_step(real, fake.detach(), y, first + len(reals) - 1)

        requires_grad(gan.discriminator, False)
        d = self.critic(y)
        with amp.autocast():
            fake_s = d(self.augmented(fake)).float()
            class_loss = self.class_loss(y)
            if gan.loss.pairs:  # a relativistic loss compares each fake with a real sample
                with torch.no_grad():
                    real_s = d(self.augmented(real)).float()
            loss_g = (gan.loss.g_loss(fake_s, real_s) if gan.loss.pairs else gan.loss.g_loss(fake_s)) + class_loss
        stats["grad_norm_g"] = amp.backward_and_step(loss_g, gan.opt_g, gan.generator, "g")
        requires_grad(gan.discriminator, True)
        stats["loss_g"] = loss_g.detach()
        return torch.stack([stats[name] for name in STATS])

    def d_step(self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None,
               index: int) -> dict[str, torch.Tensor]:
        gan, d = self.gan, self.critic(y)
        real, fake = self.augmented(real), self.augmented(fake)
        with self.precision.autocast():
            real_s = d(real).float()
            class_loss = self.class_loss(y)  # acgan: D learns the classes of the real images
            fake_s = d(fake).float()
            loss_d = gan.loss.d_loss(real_s, fake_s)
            gp = gan.loss.penalty(d, real, fake, rng=self.rng) if isinstance(gan.loss, WGANGPLoss) and self.rng \
                else gan.loss.penalty(d, real, fake)
            r1, r2 = self.regulariser(d, real, fake, index)  # lazy: zero between its steps
        norm_d = self.precision.backward_and_step(loss_d + class_loss + gp + r1 + r2, gan.opt_d, gan.discriminator, "d")
        with torch.no_grad():
            r, f = gan.loss.to_readout(real_s), gan.loss.to_readout(fake_s)
            cut = (r.mean() + f.mean()) / 2 if gan.loss.threshold is None else gan.loss.threshold
            if self.augment:
                self.augment.observe(torch.sign(r - (gan.loss.threshold or 0.0)))
            return {"loss_d": loss_d.detach(), "d_real": r.mean(), "d_fake": f.mean(),
                    "acc_real": (r > cut).float().mean(), "acc_fake": (f <= cut).float().mean(),
                    "grad_norm_d": norm_d, "gp": gp.detach(), "wasserstein": real_s.mean() - fake_s.mean(),
                    "r1": r1.detach(), "r2": r2.detach(), "class_loss": class_loss.detach()}

    def critic(self, y: torch.Tensor | None):
        """D as a function of images alone: conditioned on the classes `y` when there are any."""
        d = self.gan.discriminator
        return d if y is None else lambda x: d(x, y)

    def class_loss(self, y: torch.Tensor | None) -> torch.Tensor:
        """ACGAN's class term for D's latest call (zero otherwise)."""
        return self.zero if y is None else self.gan.discriminator.class_loss(y)

    def generate(self, n: int, y: torch.Tensor | None) -> torch.Tensor:
        noise = self.noise(n)
        return self.gan.generator(noise) if y is None else self.gan.generator(noise, y)

    def augmented(self, images: torch.Tensor) -> torch.Tensor:
        return self.augment(images, self.rng) if self.augment else images

    def noise(self, n: int) -> torch.Tensor:
        if self.rng is None:
            return torch.randn(n, self.gan.generator.z_dim, device=self.device)
        return torch.randn(n, self.gan.generator.z_dim, generator=self.rng).to(self.device)

    def check_weights(self, step: int) -> None:
        """Refuse to checkpoint NaN weights over a good checkpoint."""
        nets = (self.gan.generator, self.gan.discriminator)
        if not torch.isfinite(torch.stack([q.detach().sum() for net in nets for q in net.parameters()])).all():
            raise NonFiniteLossError(f"non-finite weights at step {step}")

    def state_dict(self) -> dict:
        gan = self.gan
        return {"generator": gan.generator.state_dict(), "discriminator": gan.discriminator.state_dict(),
                "opt_g": gan.opt_g.state_dict(), "opt_d": gan.opt_d.state_dict(),
                **({"augment": self.augment.state_dict()} if self.augment else {}),
                **({"noise": self.rng.get_state()} if self.rng is not None else {}),
                **({"global_dropout": True} if self.global_dropout else {})}

    def load_state_dict(self, state: dict) -> None:
        gan = self.gan
        gan.generator.load_state_dict(state["generator"])
        gan.discriminator.load_state_dict(state["discriminator"])
        gan.opt_g.load_state_dict(state["opt_g"])
        gan.opt_d.load_state_dict(state["opt_d"])
        if self.augment:
            self.augment.load_state_dict(state["augment"])
        if "noise" in state:
            self.rng.set_state(state["noise"])
        else:  # a checkpoint before format 4 drew z from torch's global stream: it goes on doing so
            self.rng = None
        self.global_dropout = self.rng is not None and bool(state.get("global_dropout")) and bool(self.dropouts())
        self.draw_dropout_from(None if self.global_dropout else self.rng)

    def dropouts(self) -> list:
        """G's and D's dropout layers (StreamDropout, p > 0)."""
        return [layer for net in (self.gan.generator, self.gan.discriminator) for _, layer in stream_dropouts(net)]

    def draw_dropout_from(self, rng: Optional[torch.Generator]) -> None:
        """G's and D's dropout masks drawn from `rng` (None: torch's global stream)."""
        for layer in self.dropouts():
            layer.generator = rng
