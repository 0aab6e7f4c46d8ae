"""Hand-stacked forward passes for the MLP networks (ganlab's MLP and maxout G and D, packed or not, spectral
norm included): each Linear layer of K members is one batched matmul (baddbmm) and each batch norm normalises
per member, with no vmap in between. torch.func.vmap pays a dispatch overhead at every op that these small networks feel
(benchmarks/stacked.py measures both); other networks keep the vmap (training/stack.py).

A forward here takes the stacked parameters and buffers by name (as torch.func.stack_module_state gives
them: [K, ...] each) and x as [K, B, ...], and returns [K, B, ...], updating batch norms' running statistics
in place, as the members' own modules would.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganlab.parts.networks.layers import StreamDropout
from ganlab.parts.networks.mlp import Maxout, MaxoutDiscriminator, MLPDiscriminator, MLPGenerator, maxout
from ganlab.parts.networks.packing import Packed

Tensors = dict[str, torch.Tensor]
Layer = Callable[[Tensors, Tensors, torch.Tensor], torch.Tensor]
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.Identity)


def stacked_forward(net: nn.Module, prefix: str = "") -> Optional[Layer]:
    """The hand-stacked forward of `net`, or None when it holds a module not handled here."""
    if isinstance(net, Packed):
        inner, pack = stacked_forward(net.net, f"{prefix}net."), net.pack
        if inner is None:
            return None
        return lambda p, b, x: inner(p, b, x.reshape(x.shape[0], x.shape[1] // pack, x.shape[2] * pack, *x.shape[3:]))
    if type(net) not in (MLPGenerator, MLPDiscriminator, MaxoutDiscriminator):
        return None
    body = _sequential(net.body, f"{prefix}body.")
    if body is None:
        return None
    if isinstance(net, MLPGenerator):
        shape = net.sample_shape
        return lambda p, b, z: body(p, b, z).view(z.shape[0], z.shape[1], *shape)
    return lambda p, b, x: body(p, b, x).squeeze(2)


def _sequential(seq: nn.Sequential, prefix: str) -> Optional[Layer]:
    layers = [_layer(module, f"{prefix}{name}.") for name, module in seq.named_children()]
    if any(layer is None for layer in layers):
        return None

    def forward(p: Tensors, b: Tensors, x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = layer(p, b, x)
        return x
    return forward


def _layer(module: nn.Module, prefix: str) -> Optional[Layer]:
    if isinstance(module, nn.Linear) and _plain_or_spectral(module):
        return lambda p, b, x: _linear(p, b, prefix, module, x)
    if isinstance(module, Maxout) and _plain_or_spectral(module.linear):
        width, pieces, linear = module.width, module.pieces, module.linear
        return lambda p, b, x: maxout(_linear(p, b, f"{prefix}linear.", linear, x).view(*x.shape[:2], width, pieces))
    if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
        return lambda p, b, x: x.flatten(2)
    if isinstance(module, nn.BatchNorm1d) and module.affine and module.track_running_stats:
        return lambda p, b, x: _batch_norm(p, b, prefix, module, x)
    if isinstance(module, nn.LayerNorm) and module.elementwise_affine and len(module.normalized_shape) == 1:
        return lambda p, b, x: (F.layer_norm(x, module.normalized_shape, eps=module.eps)
                                * p[f"{prefix}weight"].unsqueeze(1) + p[f"{prefix}bias"].unsqueeze(1))
    if isinstance(module, StreamDropout) and module.p > 0:  # its members' masks come in as buffers
        return lambda p, b, x: x * b[f"{prefix}mask"].to(x.dtype) if f"{prefix}mask" in b else \
            F.dropout(x, module.p, module.training)
    if isinstance(module, ELEMENTWISE) or isinstance(module, nn.Dropout) and module.p == 0:
        return lambda p, b, x: module(x)
    return None


def _plain_or_spectral(linear: nn.Linear) -> bool:
    """A Linear layer with no parametrization, or spectral norm's alone (on its weight)."""
    if not hasattr(linear, "parametrizations"):
        return True
    found = getattr(linear.parametrizations, "weight", [])
    return list(linear.parametrizations.keys()) == ["weight"] and len(found) == 1 and \
        type(found[0]).__name__ == "_SpectralNorm" and found[0].dim == 0


def _linear(p: Tensors, b: Tensors, prefix: str, module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    weight, bias = _weight(p, b, prefix, module), p.get(f"{prefix}bias")
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def _weight(p: Tensors, b: Tensors, prefix: str, module: nn.Linear) -> torch.Tensor:
    """The members' weights [K, out, in]; under spectral norm divided by each member's largest singular value,
    after one power iteration that updates its u and v in place (torch's _SpectralNorm in training mode)."""
    if not hasattr(module, "parametrizations"):
        return p[f"{prefix}weight"]
    sn, key = module.parametrizations.weight[0], f"{prefix}parametrizations.weight."
    w, u, v = p[f"{key}original"], b[f"{key}0._u"], b[f"{key}0._v"]
    with torch.no_grad():
        for _ in range(sn.n_power_iterations):
            u.copy_(F.normalize(torch.bmm(w, v.unsqueeze(2)).squeeze(2), dim=1, eps=sn.eps))
            v.copy_(F.normalize(torch.bmm(w.transpose(1, 2), u.unsqueeze(2)).squeeze(2), dim=1, eps=sn.eps))
    sigma = (u.clone() * torch.bmm(w, v.clone().unsqueeze(2)).squeeze(2)).sum(1)
    return w / sigma.view(-1, 1, 1)


def _batch_norm(p: Tensors, b: Tensors, prefix: str, module: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """Each member's batch norm over its own batch, as one batch norm over K x C channels (HFTA's trick: the
    solo module's kernel, so the same rounding): training mode, as a stack always trains."""
    k, n, c = x.shape
    tracked = b[f"{prefix}num_batches_tracked"]
    with torch.no_grad():
        tracked.add_(1)
    momentum = module.momentum if module.momentum is not None else 1.0 / float(tracked[0])
    y = F.batch_norm(x.transpose(0, 1).reshape(n, k * c), b[f"{prefix}running_mean"].view(-1),
                     b[f"{prefix}running_var"].view(-1), p[f"{prefix}weight"].reshape(-1),
                     p[f"{prefix}bias"].reshape(-1), True, momentum, module.eps)
    return y.view(n, k, c).transpose(0, 1)
