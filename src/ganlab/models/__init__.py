"""Generators and discriminators, registered under the names a config picks (`generator=dcgan`) and
built from their config node and the sample shape. D returns one raw score per sample."""

from __future__ import annotations

from omegaconf import DictConfig

from ganlab.config import (DCGANDiscriminatorConfig, DCGANGeneratorConfig, MLPDiscriminatorConfig,
                           MLPGeneratorConfig, ResNetDiscriminatorConfig, ResNetGeneratorConfig)
from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.models.mlp import MLPDiscriminator, MLPGenerator
from ganlab.models.resnet import ResNetDiscriminator, ResNetGenerator
from ganlab.registry import DISCRIMINATORS, GENERATORS, check


def check_depth(cfg: DictConfig, prefix: str) -> None:
    check(cfg.depth >= 1, f"{prefix}.depth={cfg.depth} must be >= 1")


def check_dcgan(cfg: DictConfig, prefix: str) -> None:
    check_depth(cfg, prefix)
    check(1 <= cfg.kernel_size <= 9, f"{prefix}.kernel_size={cfg.kernel_size} is out of range; it must be in [1, 9]")


GENERATORS.register("mlp", MLPGeneratorConfig)(MLPGenerator)
GENERATORS.register("dcgan", DCGANGeneratorConfig, check_dcgan)(DCGANGenerator)
GENERATORS.register("resnet", ResNetGeneratorConfig, check_depth)(ResNetGenerator)
DISCRIMINATORS.register("mlp", MLPDiscriminatorConfig)(MLPDiscriminator)
DISCRIMINATORS.register("dcgan", DCGANDiscriminatorConfig, check_dcgan)(DCGANDiscriminator)
DISCRIMINATORS.register("resnet", ResNetDiscriminatorConfig, check_depth)(ResNetDiscriminator)
