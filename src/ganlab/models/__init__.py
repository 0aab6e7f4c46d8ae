"""Generators and discriminators, registered under the names a config picks (`generator=dcgan`) and
built from their config node and the sample shape. D returns one raw score per sample."""

from __future__ import annotations

from omegaconf import DictConfig

from ganlab.config import (DCGANDiscriminatorConfig, DCGANGeneratorConfig, MLPDiscriminatorConfig,
                           MLPGeneratorConfig)
from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.models.mlp import MLPDiscriminator, MLPGenerator
from ganlab.registry import DISCRIMINATORS, GENERATORS, check


def check_dcgan(cfg: DictConfig, prefix: str) -> None:
    check(cfg.depth >= 1, f"{prefix}.depth={cfg.depth} must be >= 1")
    check(1 <= cfg.kernel_size <= 9, f"{prefix}.kernel_size={cfg.kernel_size} is out of range; it must be in [1, 9]")


GENERATORS.register("mlp", MLPGeneratorConfig)(MLPGenerator)
GENERATORS.register("dcgan", DCGANGeneratorConfig, check_dcgan)(DCGANGenerator)
DISCRIMINATORS.register("mlp", MLPDiscriminatorConfig)(MLPDiscriminator)
DISCRIMINATORS.register("dcgan", DCGANDiscriminatorConfig, check_dcgan)(DCGANDiscriminator)
