"""Toy mixtures of Gaussians with known modes: ring8, grid25 (2-D) and gauss1d (1-D)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig

from ganlab.parts.data import DataSchema, Dataset
from ganlab.parts.registry import DATASETS, check, check_positive


@dataclass
class PlaneDataConfig(DataSchema):
    """2-D points."""

    @staticmethod
    def sample_shape(cfg: DictConfig) -> tuple[int, ...]:
        return (2,)


@dataclass
class RingDataConfig(PlaneDataConfig):
    name: str = "ring8"
    n_samples: int = 20000  # points drawn once and kept in memory
    n_modes: int = 8  # Gaussians evenly spaced on the circle
    radius: float = 1.0
    std: float = 0.02


@dataclass
class GridDataConfig(PlaneDataConfig):
    name: str = "grid25"
    n_samples: int = 20000
    grid_size: int = 5  # grid_size x grid_size modes
    spacing: float = 2.0  # distance between neighbouring modes, grid centred on 0
    std: float = 0.05


@dataclass
class Gauss1dDataConfig(DataSchema):
    name: str = "gauss1d"
    n_samples: int = 20000
    means: list[float] = field(default_factory=lambda: [-2.0, 2.0])
    std: float = 0.25

    @staticmethod
    def sample_shape(cfg: DictConfig) -> tuple[int, ...]:
        return (1,)


def ring_modes(n_modes: int, radius: float) -> torch.Tensor:
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_modes(grid_size: int, spacing: float) -> torch.Tensor:
    axis = (torch.arange(grid_size, dtype=torch.float32) - (grid_size - 1) / 2) * spacing
    return torch.cartesian_prod(axis, axis)


def sample_mixture(modes: torch.Tensor, std: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points from an equal-weight mixture of isotropic Gaussians centred on `modes`."""
    which = torch.randint(len(modes), (n,), generator=generator)
    return modes[which] + std * torch.randn(n, modes.shape[1], generator=generator)


def _mixture(name: str, modes: torch.Tensor, cfg: DictConfig, seed: int) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    x = sample_mixture(modes, cfg.std, cfg.n_samples, generator)
    return Dataset(name=name, x=x, modes=modes, std=float(cfg.std))


def check_mixture(cfg: DictConfig, prefix: str) -> None:
    check(cfg.n_samples > 0, f"{prefix}.n_samples={cfg.n_samples} must be > 0")
    check_positive(f"{prefix}.std", cfg.std)


DATASETS.register("ring8", RingDataConfig, check_mixture)(
    lambda cfg, seed=0: _mixture("ring8", ring_modes(cfg.n_modes, cfg.radius), cfg, seed))
DATASETS.register("grid25", GridDataConfig, check_mixture)(
    lambda cfg, seed=0: _mixture("grid25", grid_modes(cfg.grid_size, cfg.spacing), cfg, seed))
DATASETS.register("gauss1d", Gauss1dDataConfig, check_mixture)(
    lambda cfg, seed=0: _mixture("gauss1d", torch.tensor(list(cfg.means), dtype=torch.float32).unsqueeze(1),
                                 cfg, seed))
