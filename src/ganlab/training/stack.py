"""K GANs of one architecture trained as one computation: a stack.

Each network's parameters are stacked along a new first dimension (torch.func.stack_module_state) and
every forward pass is one torch.func.vmap of functional_call over the members, or for the MLPs hand-stacked
layers (training/stacked_layers.py: a batched matmul a layer), so K small steps become one step of
K-times-larger kernels. One optimiser steps the stacked tensors; Adam, AdamW, SGD and RMSprop work
element by element, so that is each member's own step (at its own learning rate: StackedOptimizer). A member draws its noise from its own
torch.Generator, so it trains as a solo GANStep given the same stream does, within float rounding
(tests/test_stack.py).

What stacks: networks (batch and layer norm, packing, minibatch std: their running statistics are stacked
buffers; spectral norm, its power iteration without out=; dropout, each member's masks drawn from its own
stream before the stacked call) whose forward pass needs no data-dependent control flow; every loss,
WGAN-GP's penalty and lazy R1/R2 included (each member's input gradients through one autograd.grad of the
stack); EMA; bf16 (autocast, whose casts a stack's vmapped networks repeat where autocast does not reach:
training/precision.py's LowerPrecision);
conditional GANs, ACGAN included (vmap over the classes too; the class logits come out of the vmapped call);
DiffAugment and ADA (each member's own p, its transforms from its own stream); members whose learning rates
(StackedOptimizer), label targets, penalty weights or dropout rates differ. `why_not_stackable` names what
does not.
"""

from __future__ import annotations

import copy
import time
import types
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap
from tqdm import tqdm

from ganlab.record.run_folder import LAST_PT
from ganlab.parts.augment import DiffAugment
from ganlab.parts.losses import LazyRegulariser, WGANGPLoss
from ganlab.parts.networks.layers import StreamDropout, stream_dropouts
from ganlab.training.precision import Precision
from ganlab.training.stacked_layers import stacked_forward
from ganlab.training.step import GAN, STATS, GANStep, NonFiniteLossError
from ganlab.training.trainer import Trainer

ELEMENTWISE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop)  # steps linear in lr


class StackedNet:
    """K copies of one architecture, each with its own weights, called as one: [K, B, ...] -> [K, B, ...]."""

    def __init__(self, nets: list[nn.Module], fast: bool = True, rngs: Optional[list[torch.Generator]] = None,
                 precision: Optional[Precision] = None):
        """`fast`: the hand-stacked forward of training/stacked_layers.py where it knows the network (else vmap);
        `rngs`: each member's stream, which its dropout masks come from (needed where the network drops);
        `precision`: the members' (its autocast casts, applied inside vmap too)."""
        self.base = copy.deepcopy(nets[0]).to("meta")  # the architecture; its weights are the stacked ones
        for module in self.base.modules():  # spectral norm's power iteration, as torch's but without out=
            if type(module).__name__ == "_SpectralNorm":
                module._power_method = types.MethodType(_power_method_in_place, module)
        for _, layer in stream_dropouts(self.base):
            layer.generator = None  # its masks come in as buffers (masks())
        self.params, self.buffers = stack_module_state(nets)
        self.z_dim = getattr(nets[0], "z_dim", None)
        self.fast = stacked_forward(nets[0]) if fast else None  # hand-stacked layers, where they are known
        self.rngs, self.dropouts = rngs, [dict(stream_dropouts(net)) for net in nets]
        self.mask_shapes: dict[tuple, list[tuple[str, torch.Size]]] = {}  # by input shape: (layer, its input's)
        self.acgan = getattr(self.base, "method", None) == "acgan"
        self.class_logits: Optional[torch.Tensor] = None  # acgan: [K, B, classes] of the latest call
        self.precision = precision or Precision("32", torch.device("cpu"))

    def __call__(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: [K, B, ...]; y: [K, B], the classes of a conditional network's batch (None: unconditional)."""
        buffers = {**self.buffers, **self.masks(x, y)} if self.rngs and self.dropouts[0] else self.buffers
        if y is None and self.fast is not None:
            return self.fast(self.params, buffers, x)
        with self.precision.inside_vmap():
            return self._vmapped(buffers, x, y)

    def _vmapped(self, buffers: dict, x: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        if y is None:
            return vmap(lambda p, b, xi: functional_call(self.base, (p, b), (xi,)), randomness="different")(
                self.params, buffers, x)
        if not self.acgan:
            return vmap(lambda p, b, xi, yi: functional_call(self.base, (p, b), (xi, yi)), randomness="different")(
                self.params, buffers, x, y)
        scores, self.class_logits = vmap(self._with_class_logits, randomness="different")(self.params, buffers, x, y)
        return scores

    def _with_class_logits(self, p: dict, b: dict, x: torch.Tensor,
                           y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An ACGAN D's scores and the class logits it keeps (returned here: nothing vmapped may outlive the call)."""
        scores = functional_call(self.base, (p, b), (x, y))
        logits, self.base.class_logits = self.base.class_logits, None
        return scores, logits

    def masks(self, x: torch.Tensor, y: Optional[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each member's dropout masks for one call, drawn from its own stream layer by layer in the order the
        layers run, as its solo network draws them (StreamDropout): [K, ...] by buffer name."""
        key = (tuple(x.shape[1:]), None if y is None else tuple(y.shape[1:]))
        if key not in self.mask_shapes:
            self.mask_shapes[key] = self.dropout_inputs(x[0], None if y is None else y[0])
        order = self.mask_shapes[key]
        drawn = [[layers[name].draw(shape, rng) for name, shape in order]
                 for layers, rng in zip(self.dropouts, self.rngs)]
        return {f"{name}.mask": torch.stack([member[i] for member in drawn]).to(x.device)
                for i, (name, _) in enumerate(order)}

    def dropout_inputs(self, x: torch.Tensor, y: Optional[torch.Tensor]) -> list[tuple[str, torch.Size]]:
        """The dropout layers in the order one member's forward pass calls them, with their inputs' shapes
        (a pass of the architecture on the meta device)."""
        order, layers = [], dict(stream_dropouts(self.base))
        hooks = [layer.register_forward_pre_hook(lambda _, args, name=name: order.append((name, args[0].shape)))
                 for name, layer in layers.items()]
        try:
            with torch.no_grad():
                self.base(*(t.to("meta") for t in (x, y) if t is not None))
        finally:
            for hook in hooks:
                hook.remove()
        if len({name for name, _ in order}) < len(order):
            raise ValueError("a dropout layer runs more than once in one forward pass: its masks cannot be stacked")
        return order

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def requires_grad_(self, flag: bool) -> None:
        for p in self.params.values():
            p.requires_grad_(flag)

    def bind(self, nets: list[nn.Module]) -> None:
        """Each member network's parameters and buffers become views of its slice of the stacked tensors: the
        members always hold the stack's weights (their grids, scores, EMA and checkpoints read them)."""
        for k, net in enumerate(nets):
            for name, p in net.named_parameters():
                p.data = self.params[name].data[k]
            for name, b in list(net.named_buffers()):
                owner, _, leaf = name.rpartition(".")
                net.get_submodule(owner)._buffers[leaf] = self.buffers[name][k]

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's state_dict, as its solo network's."""
        return {name: t[k].detach().clone() for name, t in {**self.params, **self.buffers}.items()}

    def grad_norms(self) -> torch.Tensor:
        """Each member's gradient norm over all its parameters: [K]."""
        norms = [p.grad.flatten(1).norm(dim=1) for p in self.params.values() if p.grad is not None]
        return torch.stack(norms, dim=1).norm(dim=1)  # the norm of the per-tensor norms, as the solo run's


@torch.no_grad()
def _power_method_in_place(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
    """torch's _SpectralNorm._power_method with copy_ for its out= (which vmap refuses): each member's u and v
    updated in place in the stacked buffers, the same arithmetic."""
    for _ in range(n_power_iterations):
        self._u.copy_(F.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps))
        self._v.copy_(F.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps))


@torch.random.fork_rng(devices=[])  # the global stream stays as it was
def probe(gan: GAN) -> Optional[str]:
    """Two copies of the GAN's networks called as one stack on a tiny batch (forward and backward): what
    fails there (an `.item()`, an `out=` op, data-dependent control flow) cannot stack."""
    for name in ("generator", "discriminator"):
        try:
            g, d = (StackedNet([copy.deepcopy(n), copy.deepcopy(n)], rngs=[torch.Generator(), torch.Generator()])
                    for n in (gan.generator, gan.discriminator))
            y = torch.zeros(2, 2, dtype=torch.long) if getattr(gan.generator, "n_classes", 0) else None
            fakes = g(torch.randn(2, 2, g.z_dim), y)
            if name == "discriminator":
                d(fakes.detach(), y).sum().backward()
            else:
                fakes.sum().backward()
        except RuntimeError as e:
            return f"the {name} {type(getattr(gan, name)).__name__} fails under torch.func.vmap ({str(e).splitlines()[0]})"
    return None


def why_not_stackable(gans: list[GAN], steps: Optional[list[GANStep]] = None) -> Optional[str]:
    """Why these GANs (trained by these GANSteps) cannot train as one stack (None: they can)."""
    first = gans[0]
    if len({s.regulariser.every for s in steps or []}) > 1:
        return "the members' loss.reg_every differ"
    if steps and steps[0].dropouts() and len({(bool(s.regulariser.r1_gamma), bool(s.regulariser.r2_gamma))
                                              for s in steps}) > 1:
        return "some members take R1/R2 passes that others skip, and those passes draw dropout masks"
    for step in steps or []:
        reason = ("its precision is fp16 (a gradient scaler per run)" if step.precision.mode == "fp16" else
                  "its z does not come from a stream of its own" if step.rng is None else
                  "its dropout masks come from torch's global stream (a run begun before checkpoint format 5)"
                  if step.global_dropout else None)
        if reason:
            return f"the run cannot stack: {reason}"
    for gan in gans:
        for name, net in (("generator", gan.generator), ("discriminator", gan.discriminator)):
            if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 and not isinstance(m, StreamDropout)
                   for m in net.modules()):
                return f"the {name} has a dropout layer of its own, whose masks would not come from each member's stream"
            if type(net) is not type(getattr(first, name)) or \
                    [p.shape for p in net.parameters()] != [p.shape for p in getattr(first, name).parameters()] or \
                    [n for n, _ in stream_dropouts(net)] != [n for n, _ in stream_dropouts(getattr(first, name))]:
                return f"the members' {name}s differ in architecture"
        if gan.loss.gradient_penalty and not isinstance(gan.loss, WGANGPLoss):
            return f"the loss {type(gan.loss).__name__} has a gradient penalty of its own"
        if type(gan.loss) is not type(first.loss) or not _numbers_only(vars(gan.loss), vars(first.loss)):
            return "the members' losses differ (in more than their numbers)"
        for opt, first_opt in ((gan.opt_g, first.opt_g), (gan.opt_d, first.opt_d)):
            if not isinstance(opt, ELEMENTWISE):
                return f"the optimiser {type(opt).__name__} does not work element by element"
            if _settings(opt) != _settings(first_opt):
                return "the members' optimiser settings (other than the learning rate) differ"
    return probe(first)


def _numbers_only(a: dict, b: dict) -> bool:
    """Two settings that differ, if at all, in numbers only (label targets, penalty weights)."""
    return a.keys() == b.keys() and all(a[k] == b[k] or isinstance(a[k], (int, float)) and isinstance(b[k], (int, float))
                                        for k in a)


def _settings(optimizer: torch.optim.Optimizer) -> list[dict]:
    """An optimiser's settings but its learning rate, group by group."""
    return [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in optimizer.param_groups]


class StackedOptimizer:
    """The members' optimiser over the stacked parameters, each member at its own learning rate. Adam's,
    AdamW's, SGD's and RMSprop's steps are linear in the learning rate, so members with different rates step at rate 1
    and each member's change is scaled by its own (equal to its solo step but for rounding); members of one
    rate step as one optimiser."""

    def __init__(self, members: list[torch.optim.Optimizer], params: list[torch.Tensor]):
        rates = [opt.param_groups[0]["lr"] for opt in members]
        settings = {k: v for k, v in members[0].param_groups[0].items() if k != "params"}
        self.rates = None if len(set(rates)) == 1 else torch.tensor(rates, dtype=params[0].dtype, device=params[0].device)
        settings.update({"lr": 1.0} if self.rates is not None else {})
        try:  # the fused kernel where the optimiser has one for these tensors: a stack has few, large ones
            self.optimizer = type(members[0])(params, **{**settings, "foreach": None, "fused": True})
        except (RuntimeError, TypeError, ValueError):
            self.optimizer = type(members[0])(params, **settings)
        self.state, self.params = self.optimizer.state, params

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        if self.rates is None:
            self.optimizer.step()
            return
        before = [p.clone() for p in self.params]
        self.optimizer.step()
        for p, old in zip(self.params, before):
            p.copy_(old + (p - old) * self.rates.view(-1, *[1] * (p.dim() - 1)))


def _pairs(net: StackedNet, member: nn.Module) -> list[tuple[torch.Tensor, nn.Parameter]]:
    """(stacked parameter, the member's parameter) by name."""
    own = dict(member.named_parameters())
    return [(stacked, own[name]) for name, stacked in net.params.items()]


def gather_state(optimizer: StackedOptimizer, net: StackedNet,
                 members: list[tuple[nn.Module, torch.optim.Optimizer]]) -> None:
    """The stacked optimiser's state from its members' (a resumed stack): moments stacked, the step count
    (the same for all) kept."""
    for i, (stacked, _) in enumerate(_pairs(net, members[0][0])):
        states = [opt.state.get(_pairs(net, m)[i][1]) for m, opt in members]
        if not states[0]:
            continue
        optimizer.state[stacked] = {
            key: torch.stack([st[key] for st in states]) if key != "step" and _per_weight(value, stacked) else value.clone()
            if torch.is_tensor(value) else value for key, value in states[0].items()}


def scatter_state(optimizer: StackedOptimizer, net: StackedNet,
                  members: list[tuple[nn.Module, torch.optim.Optimizer]]) -> None:
    """Each member optimiser's state: its slice of the stacked optimiser's (copies)."""
    for k, (member, opt) in enumerate(members):
        for stacked, own in _pairs(net, member):
            state = optimizer.state.get(stacked)
            if state:
                opt.state[own] = {key: value[k].clone() if key != "step" and torch.is_tensor(value) and value.shape == stacked.shape
                                  else value.clone() if torch.is_tensor(value) else value for key, value in state.items()}


def _per_weight(value, stacked: torch.Tensor) -> bool:
    """A state tensor with one entry per weight (Adam's moments, SGD's momentum), not a count."""
    return torch.is_tensor(value) and value.shape == stacked.shape[1:]


class StackedStep:
    """The GANStep of K members: n_critic D steps, then one G step, as one vmapped computation. Each
    member's real batches come from its own batch stream and its noise from its own generator `rngs[k]`."""

    def __init__(self, gans: list[GAN], rngs: list[torch.Generator], device: torch.device, precision: str = "32",
                 fast: bool = True, regularisers: Optional[list[LazyRegulariser]] = None,
                 augments: Optional[list[Optional[DiffAugment]]] = None):
        """`fast`: hand-stacked layers where training/stacked_layers.py knows the networks (else vmap);
        `regularisers`: each member's lazy R1/R2 penalty, all on one schedule (none by default); `augments`:
        each member's augmentation of what D sees, with its own p (none by default)."""
        reason = why_not_stackable(gans)
        if reason:
            raise ValueError(f"these runs cannot train as one stack: {reason}")
        self.k, self.rngs, self.device = len(gans), rngs, device
        self.loss, self.losses = gans[0].loss, [g.loss for g in gans]  # of one kind; their numbers are each member's
        self.gans = gans
        self.precision = Precision(precision, device)
        self.generator = StackedNet([g.generator for g in gans], fast, rngs, self.precision)
        self.discriminator = StackedNet([g.discriminator for g in gans], fast, rngs, self.precision)
        self.opt_g = StackedOptimizer([g.opt_g for g in gans], self.generator.parameters())
        self.opt_d = StackedOptimizer([g.opt_d for g in gans], self.discriminator.parameters())
        for net, opt, which in ((self.generator, self.opt_g, "generator"), (self.discriminator, self.opt_d, "discriminator")):
            gather_state(opt, net, [(getattr(g, which), getattr(g, f"opt_{which[0]}")) for g in gans])
            net.bind([getattr(g, which) for g in gans])
        self.y: Optional[torch.Tensor] = None  # the current batch's classes [K, B] (a conditional GAN's)
        self.augments = augments if augments and any(augments) else None
        regularisers = regularisers or [LazyRegulariser(0.0, 0.0, 16)] * self.k
        self.reg_every = regularisers[0].every
        self.gammas = {name: torch.tensor([getattr(r, f"{name}_gamma") for r in regularisers], device=device)
                       for name in ("r1", "r2")}

    def to_members(self) -> None:
        """Each member's optimisers given their slice of the stacked ones' states (before it checkpoints)."""
        for net, opt, which in ((self.generator, self.opt_g, "generator"), (self.discriminator, self.opt_d, "discriminator")):
            scatter_state(opt, net, [(getattr(g, which), getattr(g, f"opt_{which[0]}")) for g in self.gans])

    def noise(self, n: int) -> torch.Tensor:
        """[K, n, z_dim]: member k's from its own stream."""
        z_dim = self.generator.z_dim
        return torch.stack([torch.randn(n, z_dim, generator=rng).to(self.device) for rng in self.rngs])

    def __call__(self, reals: list[list[tuple[torch.Tensor, Optional[torch.Tensor]]]], step: int) -> torch.Tensor:
        """G step `step` with its D steps; reals[k][i]: member k's i-th real batch and its classes (None when
        unconditional), as a BatchStream gives them. The measurements: [K, len(STATS)] in STATS order. As in
        GANStep, each fake takes the class of the real image beside it."""
        amp, n_critic = self.precision, len(reals[0])
        batches = [(torch.stack([member[i][0] for member in reals]),
                    None if reals[0][i][1] is None else torch.stack([member[i][1] for member in reals]))
                   for i in range(n_critic)]
        first = step * n_critic  # the number of this step's first D step
        for i, (real, self.y) in enumerate(batches[:-1]):
            with torch.no_grad(), amp.autocast():
                fake = self.generator(self.noise(real.shape[1]), self.y)
            self.d_step(real, fake, first + i)
        real, self.y = batches[-1]
        with amp.autocast():
            fake = self.generator(self.noise(real.shape[1]), self.y)
        stats = self.d_step(real, fake.detach(), first + n_critic - 1)
        self.discriminator.requires_grad_(False)
        with amp.autocast():
            fake_s = self.critic(self.augmented(fake)).float()
            class_loss = self.class_loss()  # acgan: G's fakes classed as the classes asked for
            if self.loss.pairs:  # a relativistic loss compares each fake with a real sample
                with torch.no_grad():
                    real_s = self.critic(self.augmented(real)).float()
                loss_g = torch.stack([loss.g_loss(f, r) for loss, f, r in zip(self.losses, fake_s, real_s)]) + class_loss
            else:
                loss_g = torch.stack([loss.g_loss(f) for loss, f in zip(self.losses, fake_s)]) + class_loss
        stats["grad_norm_g"] = self.backward_and_step(loss_g, self.opt_g, self.generator)
        self.discriminator.requires_grad_(True)
        stats["loss_g"] = loss_g.detach()
        zero = torch.zeros(self.k, device=self.device)
        return torch.stack([stats.get(name, zero) for name in STATS], dim=1)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """D's scores of x [K, B, ...], conditioned on the current batch's classes when there are any."""
        return self.discriminator(x, self.y)

    def augmented(self, images: torch.Tensor) -> torch.Tensor:
        """Each member's images [K, B, ...] through its own augmentation, drawn from its own stream."""
        if self.augments is None:
            return images
        return torch.stack([aug(x, rng) if aug else x for aug, x, rng in zip(self.augments, images, self.rngs)])

    def d_step(self, real: torch.Tensor, fake: torch.Tensor, index: int) -> dict[str, torch.Tensor]:
        loss, d, zero = self.loss, self.critic, torch.zeros(self.k, device=self.device)
        real, fake = self.augmented(real), self.augmented(fake)
        with self.precision.autocast():
            real_s = d(real).float()
            class_loss = self.class_loss()  # acgan: D learns the classes of the real images
            fake_s = d(fake).float()
            loss_d = torch.stack([member.d_loss(r, f) for member, r, f in zip(self.losses, real_s, fake_s)])
            gp = self.gradient_penalty(real, fake) if loss.gradient_penalty else zero
            r1, r2 = self.lazy_penalties(real, fake, index)
        norm_d = self.backward_and_step(loss_d + class_loss + gp + r1 + r2, self.opt_d, self.discriminator)
        with torch.no_grad():
            r, f = loss.to_readout(real_s).flatten(1), loss.to_readout(fake_s).flatten(1)
            cut = (r.mean(1, keepdim=True) + f.mean(1, keepdim=True)) / 2 if loss.threshold is None else loss.threshold
            for aug, member_r in zip(self.augments or [], r):  # ADA: each member's p follows its own D
                if aug:
                    aug.observe(torch.sign(member_r - (loss.threshold or 0.0)))
            return {"loss_d": loss_d.detach(), "d_real": r.mean(1), "d_fake": f.mean(1),
                    "acc_real": (r > cut).float().mean(1), "acc_fake": (f <= cut).float().mean(1),
                    "grad_norm_d": norm_d, "wasserstein": real_s.flatten(1).mean(1) - fake_s.flatten(1).mean(1),
                    "gp": gp.detach(), "r1": r1.detach(), "r2": r2.detach(), "class_loss": class_loss.detach()}

    def class_loss(self) -> torch.Tensor:
        """ACGAN's class term of each member for D's latest call (ConditionalDiscriminator.class_loss, its own
        weight): [K]; zero otherwise."""
        if not self.discriminator.acgan:
            return torch.zeros(self.k, device=self.device)
        return torch.stack([g.discriminator.class_weight * F.cross_entropy(logits.float(), y)
                            for g, logits, y in zip(self.gans, self.discriminator.class_logits, self.y)])

    def squared_gradient_norms(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's E ||grad_x D(x)||^2 over its scores (losses.squared_gradient_norm, per member): [K]."""
        x = x.detach().requires_grad_(True)
        scores = self.critic(x).float()
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
        return grad.pow(2).flatten(1).sum(1) / scores.shape[1]

    def lazy_penalties(self, real: torch.Tensor, fake: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """R1 and R2 of each member (its own gamma) at D step `index` (LazyRegulariser's schedule and scale):
        [K] each."""
        zero = torch.zeros(self.k, device=self.device)
        if index % self.reg_every:
            return zero, zero
        scale = self.reg_every / 2
        return tuple(gamma * scale * self.squared_gradient_norms(x) if gamma.any() else zero
                     for gamma, x in ((self.gammas["r1"], real), (self.gammas["r2"], fake)))

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """WGAN-GP's penalty of each member (WGANGPLoss.penalty), its interpolation weights from the member's
        own stream: [K]."""
        shape = (real.shape[1], *[1] * (real.dim() - 2))
        alpha = torch.stack([torch.rand(shape, dtype=real.dtype, generator=rng) for rng in self.rngs]).to(self.device)
        x_hat = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
        scores = self.critic(x_hat)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        norms = grad.reshape(self.k, scores.shape[1], -1).norm(dim=2)  # one per score: a sample, or a pack
        weights = torch.tensor([loss.gp_weight for loss in self.losses], device=self.device)
        return weights * (norms - 1.0).pow(2).mean(1)

    @staticmethod
    def backward_and_step(losses: torch.Tensor, optimizer: StackedOptimizer, net: StackedNet) -> torch.Tensor:
        """The members' losses [K] summed (each member's gradient is its own loss's), a step; their norms [K]."""
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        norms = net.grad_norms()
        optimizer.step()
        return norms


class StackedTrainer:
    """K member Trainers (training/trainer.py) of one schedule whose D and G steps run as one StackedStep.
    Each member keeps its own batch stream, noise stream, metrics, grids, scores, EMA and checkpoints, and
    its networks are views of its slice of the stack's weights. A member whose loss or weights turn
    non-finite is frozen (its folder keeps its last good checkpoint) while the others go on."""

    def __init__(self, members: list[Trainer], progress_bar: bool = True):
        lead = members[0]
        if len({(m.step, m.total_steps, m.steps_per_epoch) for m in members}) > 1:
            raise ValueError("the members of a stack must stand at the same step of the same schedule")
        steps = [m.gan_step for m in members]
        self.members, self.progress_bar = members, progress_bar
        self.step, self.total_steps = lead.step, lead.total_steps
        self.stacked = StackedStep([m.gan for m in members], [s.rng for s in steps], lead.gan_step.device,
                                   lead.gan_step.precision.mode, regularisers=[s.regulariser for s in steps],
                                   augments=[s.augment for s in steps])
        self.diverged: dict[int, NonFiniteLossError] = {}  # member index -> what went non-finite
        self.done: set[int] = set()  # members whose run's end is done
        self.stop_signal: str | None = None  # set by SIGINT / SIGTERM: every member checkpoints, then the stack stops
        self.last_save = time.perf_counter()

    def live(self) -> list[tuple[int, Trainer]]:
        """The members still training: neither diverged nor done with the run's end."""
        return [(k, m) for k, m in enumerate(self.members) if k not in self.diverged and k not in self.done]

    def fit(self) -> None:
        self.done = {k for k, m in enumerate(self.members) if not m.begin(quiet=k > 0)}  # nothing left to do
        with tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                  disable=not self.progress_bar) as bar:
            while True:
                self.close_epochs()  # at the start too: a stack stopped between its members' epoch ends
                if self.step >= self.total_steps or not self.live():
                    return
                _, lead = self.live()[0]
                for _ in range(min(lead.batches.steps_left(), self.total_steps - self.step)):
                    stats = self.stacked([m.batches.next() for m in self.members], self.step)
                    self.step += 1
                    for k, m in self.live():
                        self.guarded(k, m.after_step, stats[k])
                    if not self.live():  # every member diverged
                        return
                    bar.update()
                    self.checkpoint_if_due()

    def close_epochs(self) -> None:
        """Each member whose epoch's data is used up (or whose run's steps are) closes its epoch: grids, scores,
        checkpoint. A signal between members checkpoints every member that has work left, so that a resume
        closes the others' epochs and the members go on in step."""
        final = self.step >= self.total_steps
        self.stacked.to_members()
        for k, m in enumerate(self.members):
            if k in self.done or not final and m.batches.steps_left() > 0:
                continue
            if k in self.diverged:  # frozen: its data order keeps pace with the others'
                m.batches.end_epoch()
                continue
            if self.stop_signal:
                self.checkpoint_if_due()
            self.guarded(k, m.close_epoch)
            if final:
                self.done.add(k)

    def guarded(self, k: int, work, *args) -> None:
        """A member's work; a member that turns non-finite there is frozen."""
        try:
            work(*args)
        except NonFiniteLossError as e:
            self.diverged[k] = e

    def checkpoint_if_due(self) -> None:
        """Every member checkpoints when a signal asks to stop (then the stack stops) or when
        checkpoint_minutes have passed."""
        stop = self.stop_signal
        if not stop and time.perf_counter() - self.last_save <= 60 * self.members[0].schedule.checkpoint_minutes:
            return
        self.stacked.to_members()
        for k, m in self.live():  # not those done: their last.pt is their run's end
            self.guarded(k, m.save_checkpoint, LAST_PT)
        self.last_save = time.perf_counter()
        if stop:
            raise KeyboardInterrupt(stop)
