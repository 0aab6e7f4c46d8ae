"""Generator EMA: an exponential moving average of G's weights (StyleGAN2's G_ema, StudioGAN's
g_ema, compare_gan's g_use_ema), which samples better than the raw G it averages."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

CALIBRATION_BATCHES, CALIBRATION_SIZE = 8, 64  # noise batches that set the EMA generator's batch-norm statistics


class GeneratorEMA:
    def __init__(self, generator: nn.Module, decay: float, start: int):
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)
        self.model._compiled_call_impl = None  # a compiled G's copy would call back into G itself
        self.decay, self.start = decay, start

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int) -> None:
        """After G step `step`: average the weights (a plain copy before `start`), copy the buffers."""
        decay = self.decay if step > self.start else 0.0
        for ema, raw in zip(self.model.parameters(), generator.parameters()):
            ema.lerp_(raw.detach(), 1.0 - decay)
        for ema, raw in zip(self.model.buffers(), generator.buffers()):
            ema.copy_(raw)

    @torch.no_grad()
    def sampler(self) -> nn.Module:
        """The EMA generator ready to sample: its batch-norm statistics are measured anew for the
        averaged weights (G's running statistics belong to G's own weights), from fixed noise, so the
        same weights always give the same samples."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if norms:
            saved = [m.momentum for m in norms]
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
            self.model.train()
            device = next(self.model.parameters()).device
            rng = torch.Generator().manual_seed(0)
            noise = torch.randn(CALIBRATION_BATCHES, CALIBRATION_SIZE, self.model.z_dim, generator=rng).to(device)
            classes = getattr(self.model, "n_classes", 0)  # a conditional G: every class, evenly
            for batch in noise:
                self.model(batch, torch.arange(len(batch), device=device) % classes) if classes else self.model(batch)
            for m, momentum in zip(norms, saved):
                m.momentum = momentum
        return self.model.eval()

    def state_dict(self) -> dict:
        """The averaged weights with their own batch-norm statistics: ready to sample."""
        return self.sampler().state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
