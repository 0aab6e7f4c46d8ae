"""Datasets decoded once into tensors held in memory (the trainer batches them from a shuffled index)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from omegaconf import DictConfig

from ganlab.parts.registry import DATASETS, ConfigError, TargetRule, from_a_library, option_name


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
        """The shape of one sample, e.g. (1, 28, 28) or (2,): every dataset's schema says it (images.py,
        mixtures.py); this base is never asked."""
        raise NotImplementedError(f"data={cfg.name}: its schema must define sample_shape(cfg), the shape of one sample")


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


def as_dataset(data, name: str) -> Dataset:
    """A user's data (`data._target_: mydata.load`, returning a Dataset, a tensor, or (tensor, labels)):
    images (N, C, H, W) in [-1, 1] or points (N, D), labels (N,) class indices; else one line saying so."""
    if isinstance(data, Dataset):
        return data
    x, labels = data if isinstance(data, tuple) and len(data) == 2 else (data, None)
    where = f"data {name}"
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 4) or not x.is_floating_point() or len(x) < 2:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{where} should give a float tensor of images (N, C, H, W) in [-1, 1] or points (N, D), "
                          f"or (that tensor, labels); it gave {got}")
    if not torch.isfinite(x).all() or (x.dim() == 4 and x.abs().max() > 1.0 + 1e-3):
        raise ConfigError(f"{where}: its images should be finite and in [-1, 1] (x / 127.5 - 1 for bytes); found "
                          f"values up to {x.abs().max():.3g}")
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.shape != (len(x),) or labels.is_floating_point() or labels.min() < 0:
            raise ConfigError(f"{where}: labels should be N = {len(x)} class indices (0, 1, ...); got "
                              f"{tuple(labels.shape)} {labels.dtype}")
    classes = [str(k) for k in range(int(labels.max()) + 1)] if labels is not None else None
    return Dataset(name=name, x=x.float(), labels=None if labels is None else labels.long(), classes=classes)


def load_dataset(cfg: DictConfig, seed: int = 0) -> Dataset:
    """Build the dataset that `cfg` (the `data` config node) names, or a user's `_target_`."""
    return DATASETS.build(cfg, seed)


def _user_data(target, args: dict, cfg: DictConfig, seed: int = 0) -> Dataset:
    try:
        data = target(**args)
    except Exception as e:
        raise ConfigError(f"data._target_={cfg._target_} failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
                          ) from None
    return as_dataset(data, option_name(cfg))


DATASETS.custom = _user_data
DATASETS.target_rule = TargetRule(
    "a function of yours (or a ganlab.parts.data.Dataset subclass)",
    lambda target: (inspect.isfunction(target) and not from_a_library(target))
    or (inspect.isclass(target) and issubclass(target, Dataset)))
