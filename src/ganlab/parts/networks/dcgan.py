"""DCGAN (Radford et al. 2015) with configurable width, depth, kernel, activation and norm.

Resolutions: the image side is halved until it is 7 or less (64 -> 4, 32 -> 4, 28 -> 7, 8 -> 4).
G projects the noise to the smallest side and doubles it with stride-2 transposed convs, the last
of which outputs the image; D mirrors it with stride-2 convs, then one linear score. Channels are
`width` next to the image and double at each lower resolution. depth > 1 adds stride-1 convs at
every inner resolution (the seeds' "deeper" networks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ganlab.parts.networks.layers import (DiscriminatorNetConfig, GeneratorNetConfig, block, check_depth, dcgan_init,
                                          minibatch_std)
from ganlab.parts.registry import DISCRIMINATORS, GENERATORS, check


@dataclass
class DCGANGeneratorConfig(GeneratorNetConfig):
    name: str = "dcgan"
    depth: int = 2
    kernel_size: int = 4


@dataclass
class DCGANDiscriminatorConfig(DiscriminatorNetConfig):
    name: str = "dcgan"
    activation: str = "leaky_relu"
    depth: int = 2
    kernel_size: int = 4


def check_dcgan(cfg, prefix: str) -> None:
    check_depth(cfg, prefix)
    check(1 <= cfg.kernel_size <= 9, f"{prefix}.kernel_size={cfg.kernel_size} is out of range; it must be in [1, 9]")


def resolutions(image_size: int) -> list[int]:
    """Sides from the smallest to the image, e.g. 28 -> [7, 14, 28]."""
    sides = [image_size]
    while sides[0] % 2 == 0 and sides[0] > 7:
        sides.insert(0, sides[0] // 2)
    return sides


def _padding(kernel: int) -> tuple[int, int]:
    """Padding and output padding that make a stride-2 (transposed) conv exactly halve (double)."""
    pad = (kernel - 1) // 2
    return pad, 2 - kernel + 2 * pad


def _extra_convs(features: int, cfg) -> list[nn.Module]:
    """depth - 1 stride-1 conv blocks; they use the nearest odd kernel so padding is symmetric."""
    k = cfg.kernel_size if cfg.kernel_size % 2 else cfg.kernel_size - 1
    layers: list[nn.Module] = []
    for _ in range(cfg.depth - 1):
        conv = nn.Conv2d(features, features, max(k, 1), 1, "same", bias=cfg.norm != "batch")
        layers += block(conv, features, cfg, conv=True)
    return layers


@GENERATORS.register("dcgan", DCGANGeneratorConfig, check_dcgan)
class DCGANGenerator(nn.Module):
    fits_points = False  # images only

    def __init__(self, cfg, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, sides = image_shape[0], resolutions(image_shape[-1])
        n_up = len(sides) - 1
        widths = [cfg.width * 2 ** (n_up - 1 - i) for i in range(n_up)]  # inner layers, coarse to fine
        self.z_dim, self.start = cfg.z_dim, (widths[0], sides[0], sides[0])
        k, (pad, out_pad) = cfg.kernel_size, _padding(cfg.kernel_size)

        features = widths[0] * sides[0] ** 2
        layers = block(nn.Linear(cfg.z_dim, features, bias=cfg.norm != "batch"), features, cfg, conv=False)
        self.project = nn.Sequential(*layers)
        layers = _extra_convs(widths[0], cfg)
        for i in range(1, n_up):
            up = nn.ConvTranspose2d(widths[i - 1], widths[i], k, 2, pad, out_pad, bias=cfg.norm != "batch")
            layers += block(up, widths[i], cfg, conv=True) + _extra_convs(widths[i], cfg)
        layers += [nn.ConvTranspose2d(widths[-1], channels, k, 2, pad, out_pad), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, *self.start))


@DISCRIMINATORS.register("dcgan", DCGANDiscriminatorConfig, check_dcgan)
class DCGANDiscriminator(nn.Module):
    fits_points = False  # images only

    def __init__(self, cfg, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, sides = image_shape[0], resolutions(image_shape[-1])[::-1]
        widths = [cfg.width * 2 ** i for i in range(len(sides) - 1)]  # after each stride-2 conv
        k, (pad, _) = cfg.kernel_size, _padding(cfg.kernel_size)

        # No norm on the first layer, as in DCGAN: it would remove the input's own statistics.
        layers = block(nn.Conv2d(channels, widths[0], k, 2, pad), widths[0], cfg, conv=True, norm=False)
        layers += _extra_convs(widths[0], cfg)
        for i in range(1, len(widths)):
            down = nn.Conv2d(widths[i - 1], widths[i], k, 2, pad, bias=cfg.norm != "batch")
            layers += block(down, widths[i], cfg, conv=True) + _extra_convs(widths[i], cfg)
        extra, added = minibatch_std(cfg)
        self.body = nn.Sequential(*layers, *extra, nn.Flatten())
        head = nn.Linear((widths[-1] + added) * sides[-1] ** 2, 1)
        self.head = nn.utils.parametrizations.spectral_norm(head) if cfg.norm == "spectral" else head
        self.apply(dcgan_init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the linear head scores (a conditional D projects the class onto it)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)
