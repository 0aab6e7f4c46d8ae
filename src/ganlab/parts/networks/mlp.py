"""Fully connected G and D for 1-D/2-D points or flattened images."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from ganlab.parts.networks.layers import (DiscriminatorNetConfig, GeneratorNetConfig, block, dcgan_init, minibatch_std,
                                          norm_layer, StreamDropout)
from ganlab.parts.registry import DISCRIMINATORS, GENERATORS, check


@dataclass
class MLPGeneratorConfig(GeneratorNetConfig):
    name: str = "mlp"
    width: int = 128
    depth: int = 3
    norm: str = "none"
    z_dim: int = 16


@dataclass
class MLPDiscriminatorConfig(DiscriminatorNetConfig):
    name: str = "mlp"
    width: int = 128
    depth: int = 3
    activation: str = "leaky_relu"
    norm: str = "none"


@dataclass
class MaxoutDiscriminatorConfig(DiscriminatorNetConfig):
    """PacGAN's D for the 2-D mixtures: 3 x 200 maxout units of 5 pieces (Goodfellow et al. 2013)."""
    name: str = "maxout"
    width: int = 200  # maxout units per hidden layer
    depth: int = 3
    pieces: int = 5  # linear pieces each unit takes the maximum of
    norm: str = "none"
    activation: str = "relu"  # unused: the maximum is the activation


class Maxout(nn.Module):
    """`width` units, each the maximum of `pieces` linear functions of the input."""

    def __init__(self, in_features: int, width: int, pieces: int):
        super().__init__()
        self.width, self.pieces = width, pieces
        self.linear = nn.Linear(in_features, width * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return maxout(self.linear(x).view(-1, self.width, self.pieces))


def maxout(pieces: torch.Tensor) -> torch.Tensor:
    """The maximum over the last dimension. max's backward hands the gradient to the piece it picked (one
    scatter); amax's shares it among tied pieces (four passes over them: a quarter of a stacked PacGAN step's
    time, benchmarks/stacked.py). They differ only where two pieces are equal, which float32 all but never makes."""
    return pieces.max(-1).values


def _hidden(in_features: int, cfg) -> tuple[list[nn.Module], int]:
    layers, features = [], in_features
    for _ in range(cfg.depth):
        layers += block(nn.Linear(features, cfg.width), cfg.width, cfg, conv=False)
        features = cfg.width
    return layers, features


@GENERATORS.register("mlp", MLPGeneratorConfig)
class MLPGenerator(nn.Module):
    fits_points = True  # models 1-D/2-D points as well as (flattened) images

    def __init__(self, cfg, sample_shape: tuple[int, ...]):
        super().__init__()
        self.z_dim, self.sample_shape = cfg.z_dim, tuple(sample_shape)
        layers, features = _hidden(cfg.z_dim, cfg)
        layers.append(nn.Linear(features, math.prod(sample_shape)))
        if len(sample_shape) == 3:  # images live in [-1, 1]; points are unbounded
            layers.append(nn.Tanh())
        self.body = nn.Sequential(*layers)
        if len(sample_shape) == 3:
            self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).view(-1, *self.sample_shape)


@DISCRIMINATORS.register("mlp", MLPDiscriminatorConfig)
class MLPDiscriminator(nn.Module):
    fits_points = True  # models 1-D/2-D points as well as (flattened) images

    def __init__(self, cfg, sample_shape: tuple[int, ...]):
        super().__init__()
        layers, features = self.hidden(math.prod(sample_shape), cfg)
        extra, added = minibatch_std(cfg)
        layers, features = layers + extra, features + added
        head = nn.Linear(features, 1)
        head = nn.utils.parametrizations.spectral_norm(head) if cfg.norm == "spectral" else head
        self.body = nn.Sequential(nn.Flatten(), *layers, head)

    hidden = staticmethod(_hidden)

    @property
    def head(self) -> nn.Module:
        return self.body[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the linear head scores (a conditional D projects the class onto it)."""
        return self.body[:-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


def _maxout_hidden(in_features: int, cfg) -> tuple[list[nn.Module], int]:
    layers, features = [], in_features
    for _ in range(cfg.depth):
        unit = Maxout(features, cfg.width, cfg.pieces)
        if cfg.norm == "spectral":
            nn.utils.parametrizations.spectral_norm(unit.linear)
        after = norm_layer(cfg.norm, cfg.width, conv=False)
        layers += [unit] if after is None else [unit, after]
        if cfg.dropout > 0:
            layers.append(StreamDropout(cfg.dropout))
        features = cfg.width
    return layers, features


@DISCRIMINATORS.register("maxout", MaxoutDiscriminatorConfig,
                         lambda cfg, prefix: check(cfg.pieces >= 1, f"{prefix}.pieces={cfg.pieces} must be >= 1"))
class MaxoutDiscriminator(MLPDiscriminator):
    """The MLP discriminator with maxout hidden layers."""
    hidden = staticmethod(_maxout_hidden)
