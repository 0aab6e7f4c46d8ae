"""A generator, a discriminator and a loss of one's own, for ganlab's `_target_` route
(myconf/ names them; run `ganlab train --config-dir myconf generator=mine discriminator=mine loss=mine`
from this folder). The contract each meets: docs/parts.md."""

import math

import torch.nn as nn
import torch.nn.functional as F


class MyG(nn.Module):
    """Latents (N, z_dim) -> images in [-1, 1] of the data's shape (ganlab passes sample_shape)."""

    def __init__(self, z_dim=16, hidden=128, sample_shape=(1, 8, 8)):
        super().__init__()
        self.z_dim, self.shape = z_dim, tuple(sample_shape)
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, math.prod(self.shape)), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(len(z), *self.shape)


class MyD(nn.Module):
    """Images -> one raw score each."""

    def __init__(self, hidden=128, sample_shape=(1, 8, 8)):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(sample_shape), hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)


class MyHinge:
    """The hinge loss with a margin: D's and G's losses on D's raw scores."""

    def __init__(self, margin=1.0):
        self.margin = margin

    def d_loss(self, real, fake):
        return F.relu(self.margin - real).mean() + F.relu(self.margin + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()
