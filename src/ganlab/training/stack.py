"""K GANs of one architecture trained as one computation: a stack.

Each network's parameters are stacked along a new first dimension (torch.func.stack_module_state) and
every forward pass is one torch.func.vmap of functional_call over the members, so K small steps become
one step of K-times-larger kernels. One optimiser steps the stacked tensors; Adam, AdamW and SGD work
element by element, so that is each member's own step. A member draws its noise from its own
torch.Generator, so it trains as a solo GANStep given the same stream does, within float rounding
(tests/test_stack.py).

What stacks so far: networks (batch and spectral norm included: their running statistics are stacked
buffers) without dropout and whose forward pass needs no data-dependent control flow, losses without a
gradient penalty of their own or pairs, no R1/R2, no augmentation, members with the same optimiser
settings. `why_not_stackable` names what does not.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn as nn
from torch.func import functional_call, stack_module_state, vmap

from ganlab.training.precision import Precision
from ganlab.training.step import GAN, STATS

ELEMENTWISE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


class StackedNet:
    """K copies of one architecture, each with its own weights, called as one: [K, B, ...] -> [K, B, ...]."""

    def __init__(self, nets: list[nn.Module]):
        self.base = copy.deepcopy(nets[0]).to("meta")  # the architecture; its weights are the stacked ones
        self.params, self.buffers = stack_module_state(nets)
        self.z_dim = getattr(nets[0], "z_dim", None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        def one(params, buffers, xi):
            return functional_call(self.base, (params, buffers), (xi,))
        return vmap(one, randomness="different")(self.params, self.buffers, x)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def requires_grad_(self, flag: bool) -> None:
        for p in self.params.values():
            p.requires_grad_(flag)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's state_dict, as its solo network's."""
        return {name: t[k].detach().clone() for name, t in {**self.params, **self.buffers}.items()}

    def grad_norms(self) -> torch.Tensor:
        """Each member's gradient norm over all its parameters: [K]."""
        grads = [p.grad.flatten(1) for p in self.params.values() if p.grad is not None]
        return torch.cat(grads, dim=1).norm(dim=1)


def probe(gan: GAN) -> Optional[str]:
    """Two copies of the GAN's networks called as one stack on a tiny batch (forward and backward): what
    fails there (an `.item()`, an `out=` op, data-dependent control flow) cannot stack."""
    for name in ("generator", "discriminator"):
        try:
            g, d = (StackedNet([copy.deepcopy(n), copy.deepcopy(n)]) for n in (gan.generator, gan.discriminator))
            fakes = g(torch.randn(2, 2, g.z_dim))
            if name == "discriminator":
                d(fakes.detach()).sum().backward()
            else:
                fakes.sum().backward()
        except RuntimeError as e:
            return f"the {name} {type(getattr(gan, name)).__name__} fails under torch.func.vmap ({str(e).splitlines()[0]})"
    return None


def why_not_stackable(gans: list[GAN]) -> Optional[str]:
    """Why these GANs cannot train as one stack (None: they can)."""
    first = gans[0]
    for gan in gans:
        for name, net in (("generator", gan.generator), ("discriminator", gan.discriminator)):
            if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in net.modules()):
                return f"the {name} has dropout, whose masks would not come from each member's own stream"
            if type(net) is not type(getattr(first, name)) or \
                    [p.shape for p in net.parameters()] != [p.shape for p in getattr(first, name).parameters()]:
                return f"the members' {name}s differ in architecture"
        if gan.loss.gradient_penalty or gan.loss.pairs:
            return f"the loss {type(gan.loss).__name__} has a gradient penalty or pairs"
        if type(gan.loss) is not type(first.loss) or vars(gan.loss) != vars(first.loss):
            return "the members' losses differ"
        for opt, first_opt in ((gan.opt_g, first.opt_g), (gan.opt_d, first.opt_d)):
            if not isinstance(opt, ELEMENTWISE):
                return f"the optimiser {type(opt).__name__} does not work element by element"
            settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            if settings != [{k: v for k, v in g.items() if k != "params"} for g in first_opt.param_groups]:
                return "the members' optimiser settings differ"
    return probe(first)


def stacked_optimizer(template: torch.optim.Optimizer, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """The template's kind and settings over the stacked parameters."""
    settings = {k: v for k, v in template.param_groups[0].items() if k != "params"}
    return type(template)(params, **settings)


class StackedStep:
    """The GANStep of K members: n_critic D steps, then one G step, as one vmapped computation. Each
    member's real batches come from its own batch stream and its noise from its own generator `rngs[k]`."""

    def __init__(self, gans: list[GAN], rngs: list[torch.Generator], device: torch.device, precision: str = "32"):
        reason = why_not_stackable(gans)
        if reason:
            raise ValueError(f"these runs cannot train as one stack: {reason}")
        self.k, self.rngs, self.device = len(gans), rngs, device
        self.loss = gans[0].loss
        self.generator = StackedNet([g.generator for g in gans])
        self.discriminator = StackedNet([g.discriminator for g in gans])
        self.opt_g = stacked_optimizer(gans[0].opt_g, self.generator.parameters())
        self.opt_d = stacked_optimizer(gans[0].opt_d, self.discriminator.parameters())
        self.precision = Precision(precision, device)

    def noise(self, n: int) -> torch.Tensor:
        """[K, n, z_dim]: member k's from its own stream."""
        z_dim = self.generator.z_dim
        return torch.stack([torch.randn(n, z_dim, generator=rng).to(self.device) for rng in self.rngs])

    def __call__(self, reals: list[list[torch.Tensor]], step: int) -> torch.Tensor:
        """G step `step` with its D steps; reals[k][i]: member k's i-th real batch. The measurements:
        [K, len(STATS)] in STATS order."""
        amp, n_critic = self.precision, len(reals[0])
        batches = [torch.stack([member[i] for member in reals]) for i in range(n_critic)]
        for real in batches[:-1]:
            with torch.no_grad(), amp.autocast():
                fake = self.generator(self.noise(real.shape[1]))
            self.d_step(real, fake)
        real = batches[-1]
        with amp.autocast():
            fake = self.generator(self.noise(real.shape[1]))
        stats = self.d_step(real, fake.detach())
        self.discriminator.requires_grad_(False)
        with amp.autocast():
            fake_s = self.discriminator(fake).float()
            loss_g = vmap(self.loss.g_loss)(fake_s)
        stats["grad_norm_g"] = self.backward_and_step(loss_g, self.opt_g, self.generator)
        self.discriminator.requires_grad_(True)
        stats["loss_g"] = loss_g.detach()
        zero = torch.zeros(self.k, device=self.device)
        return torch.stack([stats.get(name, zero) for name in STATS], dim=1)

    def d_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = self.loss
        with self.precision.autocast():
            real_s = self.discriminator(real).float()
            fake_s = self.discriminator(fake).float()
            loss_d = vmap(loss.d_loss)(real_s, fake_s)
        norm_d = self.backward_and_step(loss_d, self.opt_d, self.discriminator)
        with torch.no_grad():
            r, f = loss.to_readout(real_s).flatten(1), loss.to_readout(fake_s).flatten(1)
            cut = (r.mean(1, keepdim=True) + f.mean(1, keepdim=True)) / 2 if loss.threshold is None else loss.threshold
            return {"loss_d": loss_d.detach(), "d_real": r.mean(1), "d_fake": f.mean(1),
                    "acc_real": (r > cut).float().mean(1), "acc_fake": (f <= cut).float().mean(1),
                    "grad_norm_d": norm_d, "wasserstein": real_s.flatten(1).mean(1) - fake_s.flatten(1).mean(1)}

    @staticmethod
    def backward_and_step(losses: torch.Tensor, optimizer: torch.optim.Optimizer, net: StackedNet) -> torch.Tensor:
        """The members' losses [K] summed (each member's gradient is its own loss's), a step; their norms [K]."""
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        norms = net.grad_norms()
        optimizer.step()
        return norms
