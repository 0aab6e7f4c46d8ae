"""Optimisers for G and D from one config: D lr = lr * d_lr_mult, G lr = lr * g_lr_mult."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from ganlab.config import AdamConfig, RMSpropConfig
from ganlab.registry import OPTIMIZERS, check, check_range


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
