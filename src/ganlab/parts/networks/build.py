"""The configured G and D: a registered network or a user's, wrapped for classes (conditional.py) or for
packs of samples (packing.py) as the config asks."""

from __future__ import annotations

import torch.nn as nn
from omegaconf import DictConfig

from ganlab.parts.networks.conditional import ConditionalDiscriminator, ConditionalGenerator
from ganlab.parts.networks.packing import Packed, packed_shape
from ganlab.parts.registry import DISCRIMINATORS, GENERATORS


def build_generator(cfg: DictConfig, shape: tuple[int, ...], n_classes: int = 0) -> nn.Module:
    """The configured G; class-conditional when `n_classes` > 0."""
    return ConditionalGenerator(cfg, shape, n_classes) if n_classes else GENERATORS.build(cfg, shape)


def build_discriminator(cfg: DictConfig, shape: tuple[int, ...], n_classes: int = 0) -> nn.Module:
    """The configured D; class-conditional when `n_classes` > 0, judging packs of samples when
    `discriminator.pack` > 1."""
    pack = DISCRIMINATORS.setting(cfg, "pack")
    if pack > 1:
        return Packed(DISCRIMINATORS.build(cfg, packed_shape(shape, pack)), pack)
    return ConditionalDiscriminator(cfg, shape, n_classes) if n_classes else DISCRIMINATORS.build(cfg, shape)
