"""Opt-in speed-ups: mixed precision (bf16, or fp16 with a gradient scaler), channels_last,
torch.compile, cudnn.benchmark. Each is one trainer setting; benchmarks/throughput.py measures them."""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
from omegaconf import DictConfig

DTYPES = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(mode: str, device: torch.device) -> str:
    """`auto`: bf16 on a CPU with bf16 matrix instructions (AVX512-BF16 or AMX; oneDNN says), else 32."""
    if mode != "auto":
        return mode
    return "bf16" if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "32"


def grad_norm(net: nn.Module) -> torch.Tensor:
    return torch.nn.utils.get_total_norm([p.grad for p in net.parameters() if p.grad is not None])


class Precision:
    """Autocast for the forward passes and, for fp16, one gradient scaler per network."""

    def __init__(self, mode: str, device: torch.device):
        self.mode = resolve_precision(mode, device)
        self.device_type, self.dtype = device.type, DTYPES[self.mode]
        self.scalers = {net: torch.amp.GradScaler(device.type, enabled=self.mode == "fp16") for net in ("d", "g")}

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, net: nn.Module,
                          which: str) -> torch.Tensor:
        """Backward, the gradient norm (unscaled), the optimiser step; returns the norm."""
        scaler = self.scalers[which]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        norm = grad_norm(net)
        scaler.step(optimizer)
        scaler.update()
        return norm


def apply_speedups(t: DictConfig, generator: nn.Module, discriminator: nn.Module, images: bool) -> None:
    """channels_last, torch.compile and cudnn.benchmark, as the trainer settings ask."""
    torch.backends.cudnn.benchmark = bool(t.cudnn_benchmark)
    if t.channels_last and images:
        generator.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    if t.compile:
        generator.compile()  # in place: state_dict keys stay as they are
        discriminator.compile()
