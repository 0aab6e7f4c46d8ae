"""A ganlab plug-in: the softplus hinge loss, registered with its schema and check."""

from dataclasses import dataclass

import torch.nn.functional as F

from ganlab.parts.losses import GANLoss, LossConfig
from ganlab.parts.registry import LOSSES, check


@dataclass
class SoftplusHingeConfig(LossConfig):
    name: str = "softplus_hinge"
    margin: float = 1.0  # where the hinge bends


def check_margin(cfg, prefix):
    check(cfg.margin > 0, f"{prefix}.margin={cfg.margin} must be > 0")


@LOSSES.register("softplus_hinge", SoftplusHingeConfig, check_margin)
class SoftplusHinge(GANLoss):
    def __init__(self, cfg):
        self.margin = cfg.margin

    def d_loss(self, real, fake):
        return F.softplus(self.margin - real).mean() + F.softplus(self.margin + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()
