"""GAN losses as small objects over D's raw scores, one interface for the trainer.

Each loss is registered in LOSSES under the name a config picks (`loss=hinge`) and built from its
config node. `d_loss(real, fake)` and `g_loss(fake)` take raw scores; `penalty(D, real, fake)` is an extra D
term (zero except WGAN-GP); `to_readout` maps scores to what metrics.csv reports as D(x):
probabilities for the BCE family, raw scores otherwise; `threshold` splits real from fake there.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import MISSING, DictConfig

from ganlab.parts.registry import LOSSES, ConfigError, TargetRule, check, check_range, from_a_library


@dataclass
class LossConfig:
    name: str = MISSING  # bce | bce_logits | label_smoothing | wgan_gp | hinge | lsgan | minimax | rpgan
    n_critic: int = 1  # recommended D steps per G step (trainer.n_critic defaults to it)
    r1_gamma: float = 0.0  # R1 penalty on real data, (gamma / 2) E||grad D(x)||^2 (0: off; StyleGAN2 uses 1-10)
    r2_gamma: float = 0.0  # the same on generated data (0: off)
    reg_every: int = 16  # apply R1 / R2 every this many D steps, scaled by it (lazy regularisation)


@dataclass
class LabelSmoothingLossConfig(LossConfig):
    name: str = "label_smoothing"
    real_target: float = 0.9  # D's target for real images, in [0, 1]
    fake_target: float = 0.0  # D's target for generated images, in [0, 1]


@dataclass
class WGANGPLossConfig(LossConfig):
    name: str = "wgan_gp"
    n_critic: int = 5
    gp_weight: float = 10.0  # lambda of the gradient penalty


LOSS_COLUMNS = ("gp", "wasserstein")  # metrics.csv columns only some losses fill (GANLoss.columns)


class GANLoss(ABC):
    """What a loss says about itself (class attributes), so no code elsewhere asks for it by name."""
    probabilities = False  # D(x) readouts are sigmoid(score)
    threshold: float | None = 0.0  # readout above it counts as "real"; None: midpoint of the batch
    critic = False  # D is a critic meant to separate real from fake as far as it can (no "D wins" diagnosis)
    columns: tuple[str, ...] = ()  # metrics.csv columns this loss fills beyond every loss's (of LOSS_COLUMNS)
    # a gradient penalty of its own through D, per sample: D may not mix samples (batch norm), fp16
    # would need the penalty's own loss scaling, and R1/R2 would penalise twice
    gradient_penalty = False
    pairs = False  # relativistic: g_loss(fake, real) also takes D's scores of the real batch, pair by pair

    def __init__(self, cfg: DictConfig | None = None):
        """`cfg`: the loss's config node, for the losses that have settings of their own."""

    @abstractmethod
    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """D's loss on its raw scores for a real and a generated batch."""

    @abstractmethod
    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """G's loss on D's raw scores for a generated batch (and, when `pairs`, a real one: g_loss(fake, real))."""

    def penalty(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return real.new_zeros(())

    def to_readout(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(scores) if self.probabilities else scores


@LOSSES.register("bce", LossConfig)
class BCELoss(GANLoss):
    """Sigmoid, then BCELoss, as the seeds had it (torch clamps log at -100, so it saturates)."""
    probabilities, threshold = True, 0.5

    def d_loss(self, real, fake):
        return (F.binary_cross_entropy(torch.sigmoid(real), torch.ones_like(real))
                + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros_like(fake)))

    def g_loss(self, fake):
        return F.binary_cross_entropy(torch.sigmoid(fake), torch.ones_like(fake))


@LOSSES.register("bce_logits", LossConfig)
class BCEWithLogitsLoss(GANLoss):
    """BCE on logits with real/fake targets (1/0 unless smoothed); non-saturating G loss."""
    probabilities, threshold = True, 0.5
    real_target, fake_target = 1.0, 0.0

    def d_loss(self, real, fake):
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, self.real_target))
                + F.binary_cross_entropy_with_logits(fake, torch.full_like(fake, self.fake_target)))

    def g_loss(self, fake):
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def check_targets(cfg: DictConfig, prefix: str) -> None:
    check_range(f"{prefix}.real_target", cfg.real_target, 0.0, 1.0)
    check_range(f"{prefix}.fake_target", cfg.fake_target, 0.0, 1.0)
    check(cfg.real_target > cfg.fake_target,
          f"{prefix}.real_target={cfg.real_target} must be above {prefix}.fake_target={cfg.fake_target}")


@LOSSES.register("label_smoothing", LabelSmoothingLossConfig, check_targets)
class LabelSmoothingLoss(BCEWithLogitsLoss):
    """BCE on logits against soft targets for D (Salimans et al. 2016): one-sided 0.9 by default."""

    def __init__(self, cfg: DictConfig):
        self.real_target, self.fake_target = cfg.real_target, cfg.fake_target


@LOSSES.register("minimax", LossConfig)
class MinimaxLoss(BCEWithLogitsLoss):
    """The original minimax game (Goodfellow et al. 2014): G minimises log(1 - D(G(z))), whose
    gradient vanishes when D confidently rejects the fakes; kept to show exactly that."""

    def g_loss(self, fake):
        return -F.softplus(fake).mean()  # = mean log(1 - sigmoid(fake))


@LOSSES.register("hinge", LossConfig)
class HingeLoss(GANLoss):
    def d_loss(self, real, fake):
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()


@LOSSES.register("lsgan", LossConfig)
class LSGANLoss(GANLoss):
    threshold = 0.5

    def d_loss(self, real, fake):
        return 0.5 * ((real - 1.0).pow(2).mean() + fake.pow(2).mean())

    def g_loss(self, fake):
        return 0.5 * (fake - 1.0).pow(2).mean()


@LOSSES.register("rpgan", LossConfig)
class RpGANLoss(GANLoss):
    """Relativistic pairing GAN (Jolicoeur-Martineau 2019), R3GAN's loss (Huang et al. 2024): each real
    sample is paired with a fake one and D learns by how much the real one is more real,
    softplus(-(D(x) - D(G(z)))); G the reverse, softplus(-(D(G(z)) - D(x))). With R1 and R2
    (loss.r1_gamma, loss.r2_gamma) it converges locally (their Theorem); +exp=r3gan is their recipe."""
    threshold = None  # only score differences matter: split at the batch's midpoint
    pairs = True

    def d_loss(self, real, fake):
        return F.softplus(fake - real).mean()

    def g_loss(self, fake, real):
        return F.softplus(real - fake).mean()


def check_gp_weight(cfg: DictConfig, prefix: str) -> None:
    check(cfg.gp_weight >= 0, f"{prefix}.gp_weight={cfg.gp_weight} must be >= 0")


@LOSSES.register("wgan_gp", WGANGPLossConfig, check_gp_weight)
class WGANGPLoss(GANLoss):
    """Critic maximises E[D(x)] - E[D(G(z))] with a penalty on (|grad D(x_hat)| - 1)^2."""
    threshold = None  # critic scores have no fixed offset: split at the batch's midpoint
    critic, columns, gradient_penalty = True, ("gp", "wasserstein"), True

    def __init__(self, cfg: DictConfig):
        self.gp_weight = cfg.gp_weight

    def d_loss(self, real, fake):
        return fake.mean() - real.mean()

    def g_loss(self, fake):
        return -fake.mean()

    def penalty(self, d, real, fake, rng: torch.Generator | None = None):
        """`rng`: the run's stream the interpolation weights come from (torch's global one by default)."""
        alpha = torch.rand(real.shape[0], *[1] * (real.dim() - 1), dtype=real.dtype, generator=rng,
                           device="cpu" if rng is not None else real.device).to(real.device)
        x_hat = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
        scores = d(x_hat)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        # one norm per score: per sample, or per pack of samples for a packed D
        return self.gp_weight * (grad.reshape(len(scores), -1).norm(dim=1) - 1.0).pow(2).mean()


def squared_gradient_norm(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """E ||grad_x D(x)||^2 over D's scores of a batch (each score's own inputs: a sample, or a pack of
    them for a packed D): R1 on real data, R2 on generated data (Mescheder et al. 2018)."""
    x = x.detach().requires_grad_(True)
    scores = d(x).float()
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.pow(2).sum() / len(scores)


class LazyRegulariser:
    """R1 / R2 penalties (gamma / 2) E||grad D||^2, applied every `every` D steps and scaled by
    `every`, as StyleGAN2's lazy regularisation: the same strength at a fraction of the cost."""

    def __init__(self, r1_gamma: float = 0.0, r2_gamma: float = 0.0, every: int = 16):
        self.r1_gamma, self.r2_gamma, self.every = r1_gamma, r2_gamma, every

    def __call__(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                 d_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The R1 and R2 terms to add to D's loss at D step `d_step` (zero between lazy steps)."""
        zero = real.new_zeros((), dtype=torch.float32)
        if d_step % self.every:
            return zero, zero
        scale = self.every / 2
        r1 = self.r1_gamma * scale * squared_gradient_norm(d, real) if self.r1_gamma else zero
        r2 = self.r2_gamma * scale * squared_gradient_norm(d, fake) if self.r2_gamma else zero
        return r1, r2


class UserLoss(GANLoss):
    """A user's loss object that is not a GANLoss: its d_loss and g_loss, and whatever else of GANLoss's
    it defines (critic, columns, penalty, ...); GANLoss's defaults for the rest."""

    def __init__(self, inner):
        self.inner = inner
        for name in ("probabilities", "threshold", "critic", "columns", "gradient_penalty", "pairs"):
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def d_loss(self, real, fake):
        return self.inner.d_loss(real, fake)

    def g_loss(self, fake, *real):
        return self.inner.g_loss(fake, *real)

    def penalty(self, d, real, fake):
        return self.inner.penalty(d, real, fake) if hasattr(self.inner, "penalty") else super().penalty(d, real, fake)


def as_gan_loss(loss) -> GANLoss:
    if isinstance(loss, GANLoss):
        return loss
    missing = [m for m in ("d_loss", "g_loss") if not callable(getattr(loss, m, None))]
    if missing:
        raise ConfigError(f"loss {type(loss).__module__}.{type(loss).__qualname__} has no {' or '.join(missing)}; a loss "
                          f"needs d_loss(real_scores, fake_scores) and g_loss(fake_scores), each returning a scalar "
                          f"tensor (docs/parts.md)")
    return UserLoss(loss)


# ganlab's own keys of any loss (a user's `loss._target_` included), with their defaults.
LOSSES.settings = {key: field.default for key, field in LossConfig.__dataclass_fields__.items() if key != "name"}
LOSSES.custom = lambda target, args, cfg: as_gan_loss(target(**args))
LOSSES.target_rule = TargetRule("a loss class of yours (with d_loss and g_loss)",
                                lambda target: inspect.isclass(target) and not from_a_library(target))
