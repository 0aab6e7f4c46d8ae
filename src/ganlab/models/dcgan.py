"""DCGAN (Radford et al. 2015) with configurable width, depth, kernel, activation and norm.

Resolutions: the image side is halved until it is 7 or less (64 -> 4, 32 -> 4, 28 -> 7, 8 -> 4);
G starts there and doubles with stride-2 transposed convs, D mirrors it with stride-2 convs.
Channels are `width` at full resolution and double at each lower one.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganlab.models.layers import activation, block, dcgan_init


def resolutions(image_size: int) -> list[int]:
    """Sides from the smallest to the image, e.g. 28 -> [7, 14, 28]."""
    sides = [image_size]
    while sides[0] % 2 == 0 and sides[0] > 7:
        sides.insert(0, sides[0] // 2)
    return sides


def _odd(kernel: int) -> int:
    """Stride-1 convs use the nearest odd kernel <= kernel_size, so 'same' padding is symmetric."""
    return kernel if kernel % 2 else max(1, kernel - 1)


def _padding(kernel: int) -> tuple[int, int]:
    """Padding and output padding that make a stride-2 (transposed) conv exactly halve (double)."""
    pad = (kernel - 1) // 2
    return pad, 2 - kernel + 2 * pad


class DCGANGenerator(nn.Module):
    def __init__(self, cfg, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, size = image_shape[0], image_shape[-1]
        sides = resolutions(size)
        widths = [cfg.width * 2 ** (len(sides) - 1 - i) for i in range(len(sides))]
        self.z_dim, self.start = cfg.z_dim, (widths[0], sides[0], sides[0])
        k, (pad, out_pad) = cfg.kernel_size, _padding(cfg.kernel_size)

        self.project = nn.Sequential(*block(nn.Linear(cfg.z_dim, widths[0] * sides[0] ** 2),
                                            widths[0] * sides[0] ** 2, cfg, conv=False))
        layers: list[nn.Module] = []
        for i in range(len(sides)):
            if i > 0:
                up = nn.ConvTranspose2d(widths[i - 1], widths[i], k, 2, pad, out_pad, bias=cfg.norm != "batch")
                layers += block(up, widths[i], cfg, conv=True)
            for _ in range(cfg.depth - 1):
                layers += block(nn.Conv2d(widths[i], widths[i], _odd(k), 1, "same", bias=cfg.norm != "batch"),
                                widths[i], cfg, conv=True)
        layers += [nn.Conv2d(widths[-1], channels, _odd(k), 1, "same"), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, *self.start))


class DCGANDiscriminator(nn.Module):
    def __init__(self, cfg, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, size = image_shape[0], image_shape[-1]
        sides = resolutions(size)[::-1]
        widths = [cfg.width * 2 ** i for i in range(len(sides))]
        k, (pad, _) = cfg.kernel_size, _padding(cfg.kernel_size)

        # No norm on the first layer, as in DCGAN: it would remove the input's own statistics.
        layers = block(nn.Conv2d(channels, widths[0], _odd(k), 1, "same"), widths[0], cfg, conv=True, norm=False)
        for i in range(len(sides)):
            if i > 0:
                layers += block(nn.Conv2d(widths[i - 1], widths[i], k, 2, pad, bias=cfg.norm != "batch"),
                                widths[i], cfg, conv=True)
            for _ in range(cfg.depth - 1):
                layers += block(nn.Conv2d(widths[i], widths[i], _odd(k), 1, "same", bias=cfg.norm != "batch"),
                                widths[i], cfg, conv=True)
        self.body = nn.Sequential(*layers, nn.Flatten())
        head = nn.Linear(widths[-1] * sides[-1] ** 2, 1)
        self.head = nn.utils.parametrizations.spectral_norm(head) if cfg.norm == "spectral" else head
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)
