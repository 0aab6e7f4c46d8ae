"""Optimisers for G and D from one config: D lr = lr * d_lr_mult, G lr = lr * g_lr_mult."""

from __future__ import annotations

import torch
from omegaconf import DictConfig


def build_optimizer(cfg: DictConfig, params, lr_mult: float) -> torch.optim.Optimizer:
    lr = cfg.lr * lr_mult
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    return torch.optim.RMSprop(params, lr=lr, alpha=cfg.alpha, weight_decay=cfg.weight_decay)
