"""Differentiable augmentation of what D sees: DiffAugment (Zhao et al. 2020) and its adaptive
probability (ADA, Karras et al. 2020).

The same random transforms are applied to real and generated images before D, in D's step and in
G's step, and gradients flow through them to G; so D cannot overfit a small training set without
G learning the augmentations. With `adaptive`, each transform is applied to an image with
probability p, tuned every `ada_interval` D steps from r_t = E[sign(D(real))]: up when D is
overconfident on reals (r_t above `target`), down otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from ganlab.parts.registry import AUGMENTATIONS, check, check_choice, check_positive, check_range


@dataclass
class AugmentConfig:
    name: str = "none"  # none | diffaug (images only)
    policy: list[str] = field(default_factory=lambda: ["color", "translation", "cutout"])  # any of these, e.g. [color]
    p: float = 1.0  # probability of each transform per image (adaptive: where p starts; ADA starts at 0)
    adaptive: bool = False  # ADA: tune p towards r_t = E[sign(D(real))] = target
    target: float = 0.6  # ADA's r_t target
    ada_interval: int = 4  # D steps between adjustments of p
    ada_kimg: float = 20.0  # thousands of real images for p to move from 0 to 1 (StyleGAN2-ADA: 500 for long runs)


TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the image size (DiffAugment's default)
CUTOUT_RATIO = 0.5  # erase a square of half the image size


Stream = Optional[torch.Generator]  # the run's own random stream (None: torch's global one, as before format 4)


def _uniform(x: torch.Tensor, rng: Stream) -> torch.Tensor:
    if rng is None:
        return torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device)
    return torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, generator=rng).to(x.device)


def _randint(low: int, high: int, n: int, x: torch.Tensor, rng: Stream) -> torch.Tensor:
    if rng is None:
        return torch.randint(low, high, (n, 1, 1), device=x.device)
    return torch.randint(low, high, (n, 1, 1), generator=rng).to(x.device)


def brightness(x: torch.Tensor, rng: Stream = None) -> torch.Tensor:
    return x + (_uniform(x, rng) - 0.5)


def saturation(x: torch.Tensor, rng: Stream = None) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, rng) * 2) + mean


def contrast(x: torch.Tensor, rng: Stream = None) -> torch.Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_uniform(x, rng) + 0.5) + mean


def translation(x: torch.Tensor, rng: Stream = None) -> torch.Tensor:
    """Shift each image by up to TRANSLATION_RATIO of its size, filling with zeros."""
    n, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    ty = _randint(-sy, sy + 1, n, x, rng)
    tx = _randint(-sx, sx + 1, n, x, rng)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy.unsqueeze(0) + ty + 1).clamp(0, h + 1)
    gx = (gx.unsqueeze(0) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    rows = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[rows, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, rng: Stream = None) -> torch.Tensor:
    """Erase (set to 0) a square of CUTOUT_RATIO of the image size at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    oy = _randint(0, h + (1 - ch % 2), n, x, rng)
    ox = _randint(0, w + (1 - cw % 2), n, x, rng)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    top, left = oy - ch // 2, ox - cw // 2
    inside = (gy >= top) & (gy < top + ch) & (gx >= left) & (gx < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"color": (brightness, saturation, contrast), "translation": (translation,), "cutout": (cutout,)}


class DiffAugment:
    """The transforms of `policy` (names of POLICIES), each applied with probability p."""

    def __init__(self, policy: list[str], p: float = 1.0, adaptive: bool = False, target: float = 0.6,
                 interval: int = 4, kimg: float = 20.0, batch_size: int = 64):
        self.transforms = [fn for name in policy for fn in POLICIES[name]]
        self.p, self.adaptive, self.target, self.interval = float(p), adaptive, target, interval
        self.speed = batch_size * interval / (kimg * 1000)  # p can cross [0, 1] in `kimg` thousand images
        self._signs = torch.zeros(())  # sum of sign(D(real)) since the last adjustment
        self._count = 0  # real scores summed into it
        self._steps = 0  # D steps since the last adjustment
        self.rt = float("nan")  # the last adjustment's r_t

    def __call__(self, x: torch.Tensor, rng: Stream = None) -> torch.Tensor:
        """The images transformed, the transforms drawn from `rng` (the run's stream; torch's global one by
        default)."""
        if self.p <= 0:
            return x
        for fn in self.transforms:
            out = fn(x, rng)
            if self.p < 1:
                keep = (torch.rand(x.size(0), 1, 1, 1, device=x.device) if rng is None else
                        torch.rand(x.size(0), 1, 1, 1, generator=rng).to(x.device)) < self.p
                out = torch.where(keep, out, x)
            x = out
        return x

    def observe(self, real_signs: torch.Tensor) -> None:
        """After a D step (adaptive only): sign(D(real)) of its batch; adjusts p every `interval` steps.
        The one host sync is at the adjustment."""
        if not self.adaptive:
            return
        self._signs = self._signs.to(real_signs.device) + real_signs.sum()
        self._count += real_signs.numel()
        self._steps += 1
        if self._steps >= self.interval:
            self.rt = float(self._signs) / self._count
            direction = 1.0 if self.rt > self.target else -1.0
            self.p = min(max(self.p + direction * self.speed, 0.0), 1.0)
            self._signs, self._count, self._steps = self._signs.new_zeros(()), 0, 0

    def state_dict(self) -> dict:
        return {"p": self.p, "rt": self.rt, "signs": self._signs.cpu(), "count": self._count, "steps": self._steps}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.rt, self._count, self._steps = state["p"], state["rt"], state["count"], state["steps"]
        self._signs = state["signs"]


def check_diffaug(cfg: DictConfig, prefix: str) -> None:
    check(len(cfg.policy) > 0, f"{prefix}.policy=[] names no transform; use augment=none, or e.g. [color]")
    for name in cfg.policy:
        check_choice(f"{prefix}.policy", name, tuple(POLICIES))
    check_range(f"{prefix}.p", cfg.p, 0.0, 1.0)
    check_range(f"{prefix}.target", cfg.target, 0.0, 1.0, low_open=True, high_open=True)
    check(cfg.ada_interval >= 1, f"{prefix}.ada_interval={cfg.ada_interval} must be >= 1")
    check_positive(f"{prefix}.ada_kimg", cfg.ada_kimg)


AUGMENTATIONS.register("none", AugmentConfig)(lambda cfg, batch_size: None)  # D sees the images as they are


@AUGMENTATIONS.register("diffaug", AugmentConfig, check_diffaug)
def diffaug(cfg: DictConfig, batch_size: int) -> DiffAugment:
    return DiffAugment(cfg.policy, cfg.p, cfg.adaptive, cfg.target, cfg.ada_interval, cfg.ada_kimg, batch_size)
