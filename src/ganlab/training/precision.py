"""Opt-in speed-ups: mixed precision (bf16, or fp16 with a gradient scaler), channels_last,
torch.compile, cudnn.benchmark. Each is one trainer setting; benchmarks/throughput.py measures them."""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig
from torch.overrides import TorchFunctionMode

DTYPES = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(mode: str, device: torch.device) -> str:
    """`auto`: bf16 on a CPU with bf16 matrix instructions (AVX512-BF16 or AMX; oneDNN says), else 32."""
    if mode != "auto":
        return mode
    return "bf16" if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "32"


# The ops autocast runs in the lower precision on CPU and CUDA (its "lower_precision_fp" list) that ganlab's networks
# call; inside torch.func.vmap autocast casts nothing (its dispatch key sits below vmap's), so stacks cast these.
LOWER_PRECISION_OPS = frozenset({
    F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d, F.linear, F.prelu,
    torch.conv1d, torch.conv2d, torch.conv3d, torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d,
    torch.matmul, torch.mm, torch.bmm, torch.baddbmm, torch.addmm, torch.addbmm,
    torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.mm, torch.Tensor.bmm, torch.Tensor.baddbmm,
    torch.Tensor.addmm})
# Norms that, outside vmap, take a bf16 input with float32 weights and statistics (computing in float32, returning
# the input's type); vmap's batching rules refuse the mix, so inside vmap they are called in float32.
MIXED_PRECISION_NORMS = frozenset({F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm})


class LowerPrecision(TorchFunctionMode):
    """Autocast's casts for its lower-precision ops, at the Python level, where torch.func.vmap does not hide
    them: each float32 tensor argument of a conv, linear or matmul becomes `dtype` (as autocast's does, so a
    vmapped network computes what its solo autocast run computes); every other op runs as called."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in LOWER_PRECISION_OPS:
            args, kwargs = tuple(self._cast(a) for a in args), {k: self._cast(v) for k, v in kwargs.items()}
        elif func in MIXED_PRECISION_NORMS and args[0].dtype == self.dtype:
            return func(args[0].float(), *args[1:], **kwargs).to(self.dtype)
        return func(*args, **kwargs)

    def _cast(self, x):
        return x.to(self.dtype) if isinstance(x, torch.Tensor) and x.dtype == torch.float32 else x


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

    def inside_vmap(self) -> contextlib.AbstractContextManager:
        """Autocast's casts for a network called under torch.func.vmap (a stack's), where autocast casts nothing."""
        return contextlib.nullcontext() if self.dtype is None else LowerPrecision(self.dtype)

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
