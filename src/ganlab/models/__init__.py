"""Generators and discriminators built from their config nodes. D returns one raw score per sample."""

from __future__ import annotations

import torch.nn as nn
from omegaconf import DictConfig

from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.models.mlp import MLPDiscriminator, MLPGenerator

GENERATORS = {"mlp": MLPGenerator, "dcgan": DCGANGenerator}
DISCRIMINATORS = {"mlp": MLPDiscriminator, "dcgan": DCGANDiscriminator}


def build_generator(cfg: DictConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    return GENERATORS[cfg.name](cfg, sample_shape)


def build_discriminator(cfg: DictConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    return DISCRIMINATORS[cfg.name](cfg, sample_shape)
