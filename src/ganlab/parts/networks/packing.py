"""PacGAN's packing (Lin et al. 2018): D judges `pack` samples at once, all real or all generated,
concatenated along their first (channel or feature) dimension; a D that sees several fakes together
can tell when they are too alike, which punishes mode collapse. Any D packs: it is built for the
packed sample's shape and returns one score per pack."""

from __future__ import annotations

import torch
import torch.nn as nn


def packed_shape(shape: tuple[int, ...], pack: int) -> tuple[int, ...]:
    """The shape D sees for `pack` samples of `shape` side by side."""
    return (shape[0] * pack, *shape[1:])


class Packed(nn.Module):
    """`net`, fed the batch's consecutive samples in packs of `pack` (the data are shuffled and the fakes
    independent, so the packs are random); the batch size must be a multiple of `pack`."""

    def __init__(self, net: nn.Module, pack: int):
        super().__init__()
        self.net, self.pack = net, pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"a batch of {n} samples cannot be cut into packs of {self.pack}")
        return self.net(x.reshape(n // self.pack, x.shape[1] * self.pack, *x.shape[2:]))
