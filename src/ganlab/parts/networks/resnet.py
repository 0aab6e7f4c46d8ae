"""Residual G and D as in SNGAN (Miyato et al. 2018) and mimicry's `sngan`, sized from the image.

Resolutions are the DCGAN's (models/dcgan.py): the side is halved until it is 7 or less. G projects
the noise to the smallest side and each up-block doubles it (BN-act-upsample-conv-BN-act-conv plus
an upsampled 1x1 shortcut), then BN-act-conv3x3-tanh makes the image. D's first block works on the
image itself (conv-act-conv-pool, pool-1x1 shortcut); each later block is act-conv-act-conv-pool;
then act, a sum over positions and one linear score. Channels are `width` at full resolution and
double at each lower one. depth > 1 adds blocks that keep the resolution. In D, `norm: spectral`
(its default) puts spectral norm on every conv and the linear head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganlab.parts.networks.dcgan import resolutions
from ganlab.parts.networks.layers import (DiscriminatorNetConfig, GeneratorNetConfig, activation, check_depth,
                                          minibatch_std, norm_layer, StreamDropout)
from ganlab.parts.registry import DISCRIMINATORS, GENERATORS


@dataclass
class ResNetGeneratorConfig(GeneratorNetConfig):
    name: str = "resnet"
    z_dim: int = 128


@dataclass
class ResNetDiscriminatorConfig(DiscriminatorNetConfig):
    name: str = "resnet"
    norm: str = "spectral"


def _conv(cfg, c_in: int, c_out: int, kernel: int) -> nn.Module:
    conv = nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2)
    nn.init.xavier_uniform_(conv.weight, math.sqrt(2) if kernel > 1 else 1.0)
    nn.init.zeros_(conv.bias)
    return nn.utils.parametrizations.spectral_norm(conv) if cfg.norm == "spectral" else conv


def _norm(cfg, channels: int) -> nn.Module:
    return norm_layer(cfg.norm, channels, conv=True) or nn.Identity()


def _dropout(cfg) -> nn.Module:
    return StreamDropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()


class GBlock(nn.Module):
    """norm-act-(upsample)-conv-norm-act-conv, plus a (upsampled) 1x1 shortcut where shapes change."""

    def __init__(self, cfg, c_in: int, c_out: int, up: bool):
        super().__init__()
        self.up = up
        self.norm1, self.conv1 = _norm(cfg, c_in), _conv(cfg, c_in, c_out, 3)
        self.norm2, self.conv2 = _norm(cfg, c_out), _conv(cfg, c_out, c_out, 3)
        self.act, self.drop = activation(cfg.activation), _dropout(cfg)
        self.shortcut = _conv(cfg, c_in, c_out, 1) if up or c_in != c_out else nn.Identity()

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.up else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self._resample(self.act(self.norm1(x))))
        h = self.conv2(self.act(self.norm2(h)))
        return self.drop(h + self.shortcut(self._resample(x)))


class DBlock(nn.Module):
    """(act)-conv-act-conv-(pool), plus a 1x1-(pool) shortcut where shapes change. The first block
    sees the image, so it starts with the conv, not an activation."""

    def __init__(self, cfg, c_in: int, c_out: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.norm1 = _conv(cfg, c_in, c_out, 3), _norm(cfg, c_out)
        self.conv2, self.norm2 = _conv(cfg, c_out, c_out, 3), _norm(cfg, c_out)
        self.act, self.drop = activation(cfg.activation), _dropout(cfg)
        self.shortcut = _conv(cfg, c_in, c_out, 1) if down or c_in != c_out else nn.Identity()

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else self.act(x))
        h = self._resample(self.conv2(self.act(self.norm1(h))))
        h = self.norm2(h)
        # SNGAN's first block pools before its shortcut conv; the others convolve first.
        skip = self.shortcut(self._resample(x)) if self.first else self._resample(self.shortcut(x))
        return self.drop(h + skip)


def _widths(cfg, n_levels: int) -> list[int]:
    """Channels from full resolution (width) down to the smallest side, doubling at each level."""
    return [cfg.width * 2 ** i for i in range(n_levels)]


@GENERATORS.register("resnet", ResNetGeneratorConfig, check_depth)
class ResNetGenerator(nn.Module):
    fits_points = False  # images only

    def __init__(self, cfg, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, sides = image_shape[0], resolutions(image_shape[-1])
        widths = _widths(cfg, len(sides))[::-1]  # coarse to fine
        self.z_dim, self.start = cfg.z_dim, (widths[0], sides[0], sides[0])
        self.project = nn.Linear(cfg.z_dim, widths[0] * sides[0] ** 2)
        nn.init.xavier_uniform_(self.project.weight)
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            blocks.append(GBlock(cfg, c_in, c_out, up=True))
            blocks += [GBlock(cfg, c_out, c_out, up=False) for _ in range(cfg.depth - 1)]
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Sequential(_norm(cfg, widths[-1]), activation(cfg.activation),
                                 _conv(cfg, widths[-1], channels, 3), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.project(z).view(-1, *self.start)))


@DISCRIMINATORS.register("resnet", ResNetDiscriminatorConfig, check_depth)
class ResNetDiscriminator(nn.Module):
    fits_points = False  # images only

    def __init__(self, cfg, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, n_levels = image_shape[0], len(resolutions(image_shape[-1]))
        widths = _widths(cfg, n_levels - 1)  # after each down-block, fine to coarse
        blocks: list[nn.Module] = []
        for i, c_out in enumerate(widths):
            blocks.append(DBlock(cfg, channels if i == 0 else widths[i - 1], c_out, down=True, first=i == 0))
            blocks += [DBlock(cfg, c_out, c_out, down=False) for _ in range(cfg.depth - 1)]
        extra, added = minibatch_std(cfg)
        self.blocks = nn.Sequential(*blocks, *extra)
        self.act = activation(cfg.activation)
        head = nn.Linear(widths[-1] + added, 1)
        nn.init.xavier_uniform_(head.weight)
        self.head = nn.utils.parametrizations.spectral_norm(head) if cfg.norm == "spectral" else head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the linear head scores (a conditional D projects the class onto it)."""
        return self.act(self.blocks(x)).sum(dim=(2, 3))  # SNGAN's global sum pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
