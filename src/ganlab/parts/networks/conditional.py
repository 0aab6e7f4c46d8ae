"""Class-conditional G and D around any registered network.

G takes the class as a learned embedding joined to z (`generator.conditioning=concat`, Mirza &
Osindero 2014) or through conditional batch norm (`cbn`: G's norms lose their own gain and bias and
get one per class, as in SNGAN's and BigGAN's conditional generators). D conditions by projection
(`discriminator.conditioning=projection`: score + <embed(y), features>, Miyato & Koyama 2018) or
with an auxiliary classifier on its features (`acgan`, Odena et al. 2017), whose class logits the
training step turns into a cross-entropy term.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from omegaconf import DictConfig

from ganlab.parts.registry import DISCRIMINATORS, GENERATORS

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


class ClassNorm(nn.Module):
    """`norm` without its affine, then a gain (from 1) and a bias (from 0) looked up by class."""

    def __init__(self, norm: nn.Module, n_classes: int):
        super().__init__()
        if isinstance(norm, nn.GroupNorm):
            self.norm, features = nn.GroupNorm(norm.num_groups, norm.num_channels, norm.eps, affine=False), norm.num_channels
        elif isinstance(norm, nn.LayerNorm):
            self.norm, features = nn.LayerNorm(norm.normalized_shape, norm.eps, elementwise_affine=False), norm.normalized_shape[0]
        else:
            self.norm, features = type(norm)(norm.num_features, norm.eps, norm.momentum, affine=False), norm.num_features
        self.gain, self.bias = nn.Embedding(n_classes, features), nn.Embedding(n_classes, features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)
        self.y: torch.Tensor | None = None  # the batch's classes, set by ConditionalGenerator.forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        shape = (len(h), h.shape[1]) + (1,) * (h.dim() - 2)
        return h * self.gain(self.y).view(shape) + self.bias(self.y).view(shape)


def class_norms(net: nn.Module, n_classes: int) -> list[ClassNorm]:
    """Replace every norm layer of `net` with a ClassNorm; return them."""
    swapped = []
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, NORMS):
                swapped.append(ClassNorm(child, n_classes))
                setattr(parent, name, swapped[-1])
    return swapped


class ConditionalGenerator(nn.Module):
    def __init__(self, cfg: DictConfig, shape: tuple[int, ...], n_classes: int):
        super().__init__()
        self.z_dim, self.n_classes, self.method = cfg.z_dim, n_classes, cfg.conditioning
        if self.method == "concat":
            widened = cfg.copy()
            widened.z_dim = cfg.z_dim + n_classes
            self.net = GENERATORS.build(widened, shape)
            self.embed = nn.Embedding(n_classes, n_classes)
            nn.init.eye_(self.embed.weight)  # starts as the one-hot code
        else:
            self.net = GENERATORS.build(cfg, shape)
            self.norms = class_norms(self.net, n_classes)  # a plain list: they are registered inside net

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.method == "concat":
            return self.net(torch.cat([z, self.embed(y).to(z.dtype)], 1))
        for norm in self.norms:
            norm.y = y
        return self.net(z)


class ConditionalDiscriminator(nn.Module):
    def __init__(self, cfg: DictConfig, shape: tuple[int, ...], n_classes: int):
        super().__init__()
        self.net = DISCRIMINATORS.build(cfg, shape)
        self.method, self.class_weight = cfg.conditioning, cfg.class_weight
        features = self.net.head.in_features
        if self.method == "projection":
            embed = nn.Embedding(n_classes, features)
            nn.init.xavier_uniform_(embed.weight)
            self.embed = nn.utils.parametrizations.spectral_norm(embed) if cfg.norm == "spectral" else embed
        else:
            self.classify = nn.Linear(features, n_classes)
        self.class_logits: torch.Tensor | None = None  # acgan: the class logits of the latest call

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.net.features(x)
        score = self.net.head(h).squeeze(1)
        if self.method == "projection":
            return score + (self.embed(y) * h).sum(1)
        self.class_logits = self.classify(h)
        return score

    def class_loss(self, y: torch.Tensor) -> torch.Tensor:
        """acgan: the weighted cross-entropy of the latest call's class logits against `y` (else 0)."""
        if self.method != "acgan":
            return y.new_zeros((), dtype=torch.float32)
        return self.class_weight * nn.functional.cross_entropy(self.class_logits.float(), y)
