"""Optimisers for G and D from one config: D lr = lr * d_lr_mult, G lr = lr * g_lr_mult."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING, DictConfig

from ganlab.parts.registry import OPTIMIZERS, TargetRule, check, check_range


@dataclass
class OptimConfig:
    name: str = MISSING  # adam | rmsprop
    lr: float = 2e-4  # base learning rate
    d_lr_mult: float = 1.0  # D lr = lr * d_lr_mult
    g_lr_mult: float = 1.0  # G lr = lr * g_lr_mult
    weight_decay: float = 0.0


@dataclass
class AdamConfig(OptimConfig):
    name: str = "adam"
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # DCGAN's; WGAN-GP uses [0.0, 0.9]


@dataclass
class RMSpropConfig(OptimConfig):
    name: str = "rmsprop"
    lr: float = 5e-5
    alpha: float = 0.99  # smoothing constant of the squared-gradient average


def check_betas(cfg: DictConfig, prefix: str) -> None:
    check(len(cfg.betas) == 2, f"{prefix}.betas={list(cfg.betas)} must be two numbers, e.g. [0.5,0.999]")
    for i, beta in enumerate(cfg.betas):
        check_range(f"{prefix}.betas[{i}]", beta, 0.0, 1.0, high_open=True)


@OPTIMIZERS.register("adam", AdamConfig, check_betas)
def adam(cfg: DictConfig, params, lr_mult: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr * lr_mult, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("rmsprop", RMSpropConfig,
                     lambda cfg, prefix: check_range(f"{prefix}.alpha", cfg.alpha, 0.0, 1.0, high_open=True))
def rmsprop(cfg: DictConfig, params, lr_mult: float) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=cfg.lr * lr_mult, alpha=cfg.alpha, weight_decay=cfg.weight_decay)


# ganlab's own keys of any optimiser, a user's (`optim._target_: torch.optim.SGD`) included; the user's
# class gets the parameters, lr (optim.lr times the network's multiplier) and its own arguments.
OPTIMIZERS.settings = {key: OptimConfig.__dataclass_fields__[key].default for key in ("lr", "d_lr_mult", "g_lr_mult")}
OPTIMIZERS.custom = lambda target, args, cfg, params, lr_mult: target(
    params, lr=OPTIMIZERS.setting(cfg, "lr") * lr_mult, **args)
OPTIMIZERS.target_rule = TargetRule("a torch.optim.Optimizer subclass", lambda target: inspect.isclass(target)
                                    and issubclass(target, torch.optim.Optimizer))
