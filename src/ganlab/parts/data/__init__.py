"""Datasets decoded once into tensors held in memory (the trainer batches them from a shuffled index)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from omegaconf import DictConfig


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message names the files and where to put them."""


class DatasetError(ValueError):
    """A dataset's files are there but cannot be used (corrupt, cut short); the message names the file."""


class DataSchema:
    """What a dataset option says about itself before any file is read: the class attributes of its
    schema (`DATASETS[name].schema`), so no code outside ganlab/parts/data asks for a dataset by name."""
    holds_images: ClassVar[bool] = False  # images (C, H, W) in [-1, 1], else points (D,)
    has_splits: ClassVar[bool] = False  # a train and a test split (the yardstick holds out the other one)

    @staticmethod
    def sample_shape(cfg: DictConfig) -> tuple[int, ...]:
        raise NotImplementedError


def data_schema(cfg: DictConfig) -> type[DataSchema]:
    """The schema class of the dataset option `cfg` (the `data` node) names."""
    from ganlab.parts.registry import DATASETS

    return DATASETS[cfg.name].schema


@dataclass
class Dataset:
    name: str
    x: torch.Tensor  # images (N, C, H, W) in [-1, 1], or points (N, D)
    labels: Optional[torch.Tensor] = None  # class per image, where the dataset has them
    classes: Optional[list[str]] = None  # the classes' names, indexed by label
    modes: Optional[torch.Tensor] = None  # mixture centres (K, D) for the toy mixtures
    std: Optional[float] = None  # mixture component std for the toy mixtures

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device) -> "Dataset":
        self.x = self.x.to(device)
        return self


def load_dataset(cfg: DictConfig, seed: int = 0) -> Dataset:
    """Build the dataset that `cfg` (the `data` config node) names."""
    from ganlab.parts.registry import DATASETS

    return DATASETS.build(cfg, seed)
