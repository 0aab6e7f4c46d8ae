"""Building blocks shared by the networks: activations, normalisations, init."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from omegaconf import MISSING, DictConfig

from ganlab.parts.registry import check


@dataclass
class NetConfig:
    name: str = MISSING  # mlp | dcgan | resnet
    width: int = 64  # mlp: hidden units; dcgan, resnet: channels at full resolution (doubling below)
    depth: int = 1  # mlp: hidden layers; dcgan: conv blocks per inner resolution; resnet: residual blocks per resolution
    activation: str = "relu"  # relu | leaky_relu | gelu | elu | silu | tanh
    norm: str = "batch"  # batch | layer | spectral | none
    dropout: float = 0.0  # after each hidden block, in [0, 1)


@dataclass
class GeneratorNetConfig(NetConfig):
    z_dim: int = 64  # noise dimensions
    # how G takes the class in a conditional GAN (discriminator.conditioning != none): concat (a
    # learned class embedding joined to z) | cbn (conditional batch norm: per-class gain and bias)
    conditioning: str = "concat"


@dataclass
class DiscriminatorNetConfig(NetConfig):
    # none | projection (Miyato & Koyama 2018) | acgan (an auxiliary classifier, Odena et al. 2017);
    # anything but none makes the GAN class-conditional, with labels from the dataset
    conditioning: str = "none"
    class_weight: float = 1.0  # acgan: weight of the class loss in D's and G's losses
    # Remedies against mode collapse, for any D (docs/guide.md, "Against mode collapse"):
    pack: int = 1  # PacGAN (Lin et al. 2018): D judges this many samples at once, concatenated (1: off)
    minibatch_std: bool = False  # StyleGAN's minibatch standard deviation feature before D's head


ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "gelu": lambda: nn.GELU(),
    "elu": lambda: nn.ELU(),
    "silu": lambda: nn.SiLU(),
    "tanh": lambda: nn.Tanh(),
}
NORMS = ("batch", "layer", "spectral", "none")


def check_depth(cfg: DictConfig, prefix: str) -> None:
    check(cfg.depth >= 1, f"{prefix}.depth={cfg.depth} must be >= 1")


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def normalised(layer: nn.Module, norm: str, features: int, conv: bool) -> list[nn.Module]:
    """`layer` followed by the normalisation `norm` over its `features` outputs.

    "layer" on a conv normalises over channels and positions together (GroupNorm with one group),
    which is the layer norm WGAN-GP recommends for critics; "spectral" rescales the layer's weight.
    """
    if norm == "spectral":
        return [nn.utils.parametrizations.spectral_norm(layer)]
    after = norm_layer(norm, features, conv)
    return [layer] if after is None else [layer, after]


def norm_layer(norm: str, features: int, conv: bool) -> nn.Module | None:
    """The layer that normalises `features` activations for `norm` (None for spectral and none,
    which leave activations alone)."""
    if norm == "batch":
        return nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)
    if norm == "layer":
        return nn.GroupNorm(1, features) if conv else nn.LayerNorm(features)
    return None


def block(layer: nn.Module, features: int, net, conv: bool, *, norm: bool = True) -> list[nn.Module]:
    """layer -> norm -> activation -> dropout, as the network config `net` asks."""
    modules = normalised(layer, net.norm if norm else "none", features, conv)
    modules.append(activation(net.activation))
    if net.dropout > 0:
        modules.append(StreamDropout(net.dropout))
    return modules


class StreamDropout(nn.Dropout):
    """Dropout whose masks come from the run's own random stream (`generator`, which the run's GANStep sets to
    its noise stream), so that a stack's member draws the masks of its solo run (training/stack.py hands each
    member's pre-drawn masks in as `mask`). With no generator (a run checkpointed before format 5), torch's
    global stream, as nn.Dropout."""

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self.generator: torch.Generator | None = None
        self.register_buffer("mask", None, persistent=False)  # a stack's member's mask, for one call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.mask is not None:
            return x * self.mask.to(x.dtype)
        if self.generator is None:
            return super().forward(x)
        return x * self.draw(x.shape, self.generator).to(x.device, x.dtype)

    def draw(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        """A mask of `shape` from `generator`: 0 where dropped, 1 / (1 - p) where kept."""
        keep = 1.0 - self.p
        return torch.empty(shape).bernoulli_(keep, generator=generator).div_(keep)


def stream_dropouts(net: nn.Module) -> list[tuple[str, StreamDropout]]:
    """The network's StreamDropout layers that drop (p > 0), by name, in the order of its modules."""
    return [(name, m) for name, m in net.named_modules() if isinstance(m, StreamDropout) and m.p > 0]


class MinibatchStd(nn.Module):
    """StyleGAN's minibatch standard deviation (Karras et al. 2018): the standard deviation of each feature
    over a group of samples, averaged to one number and joined to every sample of the group as one more
    feature (channel); a collapsed G, whose samples hardly differ, cannot fake it."""

    GROUP = 4  # StyleGAN's group size; a batch it does not divide uses the largest size that does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        group = math.gcd(n, self.GROUP)
        y = x.reshape(group, n // group, *x.shape[1:])  # sample i joins the group of i mod n / group
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().flatten(1).mean(1)  # one number per group
        y = y.repeat(group).reshape(n, 1, *[1] * (x.dim() - 2)).expand(n, 1, *x.shape[2:])
        return torch.cat([x, y.to(x.dtype)], 1)


def minibatch_std(net) -> tuple[list[nn.Module], int]:
    """The minibatch std layer and the features it adds, when the network config `net` asks for it."""
    return ([MinibatchStd()], 1) if net.get("minibatch_std") else ([], 0)


def dcgan_init(module: nn.Module) -> None:
    """Weights from N(0, 0.02), norm scales from N(1, 0.02), as in Radford et al. (2015)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        weight = module.parametrizations.weight.original if hasattr(module, "parametrizations") else module.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
