"""Image datasets, decoded once, resized and scaled to [-1, 1] as one (N, C, H, W) tensor."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import MISSING, DictConfig

from ganlab.parts.data import DataSchema, Dataset, DatasetError, DatasetNotFoundError
from ganlab.parts.data.idx import read_idx
from ganlab.parts.registry import DATASETS, check, check_choice


@dataclass
class ImageDataConfig(DataSchema):
    holds_images: ClassVar[bool] = True
    has_splits: ClassVar[bool] = True
    name: str = MISSING  # digits | mnist | fashion_mnist | cifar10 | folder
    root: Optional[str] = None  # folder holding the dataset's files (digits: unused, bundled)
    image_size: int = 32  # pixels per side: 8, 16, 28, 32 or 64
    channels: int = 1  # 1 (grey) or 3 (RGB)
    split: str = "train"  # train | test
    limit: Optional[int] = None  # keep only the first N images (null: all)
    download: bool = False  # torchvision download when files are missing (needs internet)

    @staticmethod
    def sample_shape(cfg: DictConfig) -> tuple[int, ...]:
        return (cfg.channels, cfg.image_size, cfg.image_size)


@dataclass
class FolderDataConfig(ImageDataConfig):
    has_splits: ClassVar[bool] = False  # one folder of images: the yardstick holds out a tenth of them


log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
# Folders searched for IDX files besides data.root: torchvision's layout, and Debian's
# dataset-fashion-mnist package.
IDX_DATASETS = {
    "mnist": {"torchvision": "MNIST", "system": []},
    "fashion_mnist": {"torchvision": "FashionMNIST", "system": ["/usr/share/datasets/fashion-mnist"]},
}


IMAGE_SIZES = (8, 16, 28, 32, 64)
DIGITS = [str(i) for i in range(10)]
CLASSES = {"digits": DIGITS, "mnist": DIGITS,
           "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                             "Bag", "Ankle boot"],
           "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}


def check_images(cfg: DictConfig, prefix: str) -> None:
    check_choice(f"{prefix}.image_size", cfg.image_size, IMAGE_SIZES)
    check_choice(f"{prefix}.channels", cfg.channels, (1, 3))
    check_choice(f"{prefix}.split", cfg.split, ("train", "test"))
    check(cfg.limit is None or cfg.limit > 0, f"{prefix}.limit={cfg.limit} must be > 0 (or null for all)")
    check(cfg.name != "folder" or bool(cfg.root),
          "data=folder needs the folder of your images: add data.root=/path/to/images")


def load(cfg: DictConfig, read) -> Dataset:
    """The dataset from `read(cfg)`: uint8 images (N, H, W) or (N, H, W, C), labels or None, and the
    classes' names (a folder's come from its subfolders)."""
    images, labels, classes = read(cfg)
    if cfg.limit is not None:
        images, labels = images[: cfg.limit], None if labels is None else labels[: cfg.limit]
    x = to_tensor(images, cfg.channels, cfg.image_size)
    y = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
    log.info("data %s: %d images of %s", cfg.name, len(x), "x".join(map(str, x.shape[1:])))
    return Dataset(name=cfg.name, x=x, labels=y, classes=None if y is None else classes)


def to_tensor(images: np.ndarray, channels: int, size: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 images (N, H, W[, C]) -> float (N, channels, size, size) in [-1, 1], resized in chunks."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    out = []
    for part in x.split(chunk):
        part = part.float().div_(127.5).sub_(1.0)
        if part.shape[1] != channels:
            part = part.mean(1, keepdim=True) if channels == 1 else part.expand(-1, 3, -1, -1)
        if part.shape[-1] != size or part.shape[-2] != size:
            part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(part.clamp_(-1, 1))
    return torch.cat(out).contiguous()


def _digits(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's 8x8 digits; every 5th image is the test split (360), the rest train (1,437)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    test = np.arange(len(images)) % 5 == 0
    keep = test if cfg.split == "test" else ~test
    return images[keep], bunch.target[keep], DIGITS


def _idx_names(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_file(folder: Path, stem: str) -> Optional[Path]:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):  # the last: a common rename
        if (folder / name).is_file():
            return folder / name
    return None


def idx_folders(cfg: DictConfig) -> list[Path]:
    root = Path(cfg.root).expanduser()
    known = IDX_DATASETS[cfg.name]
    return [root, root / "raw", root / known["torchvision"] / "raw", *map(Path, known["system"])]


def _idx(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    stems = _idx_names(cfg.split)
    if cfg.download:
        _download_torchvision(cfg)
    for folder in idx_folders(cfg):
        found = [_find_file(folder, stem) for stem in stems]
        if all(found):
            images, labels = (read_idx(path) for path in found)
            if images.ndim != 3 or len(images) != len(labels):
                raise DatasetError(f"{found[0]}: expected N x H x W images matching {len(labels)} labels, "
                                 f"got shape {images.shape}")
            log.info("reading %s from %s", cfg.name, folder)
            return images, labels, CLASSES[cfg.name]
    looked = ", ".join(str(f) for f in idx_folders(cfg))
    raise DatasetNotFoundError(
        f"data={cfg.name}: cannot find {stems[0]}[.gz] and {stems[1]}[.gz] (looked in {looked}); "
        f"put the dataset's IDX files in {Path(cfg.root).expanduser()} (or set data.root=FOLDER that holds "
        f"them), or add data.download=true when online")


def _download_torchvision(cfg: DictConfig) -> None:
    import torchvision

    cls = getattr(torchvision.datasets, IDX_DATASETS[cfg.name]["torchvision"])
    cls(root=str(Path(cfg.root).expanduser()), train=cfg.split == "train", download=True)


def _cifar10(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import torchvision

    root = Path(cfg.root).expanduser()
    try:
        ds = torchvision.datasets.CIFAR10(root=str(root), train=cfg.split == "train", download=cfg.download)
    except RuntimeError as e:
        raise DatasetNotFoundError(
            f"data=cifar10: cannot find cifar-10-batches-py/ in {root} ({e}); extract cifar-10-python.tar.gz "
            f"there (or set data.root=FOLDER that holds cifar-10-batches-py/), or add data.download=true "
            f"when online") from None
    return ds.data, np.asarray(ds.targets), CLASSES["cifar10"]


def _folder(cfg: DictConfig) -> tuple[np.ndarray, Optional[np.ndarray], list[str]]:
    """Every image under data.root; when they all lie in subfolders of it (two or more), each
    subfolder is a class, named after it (torchvision's ImageFolder layout)."""
    from PIL import Image, UnidentifiedImageError
    from tqdm import tqdm

    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"data=folder: data.root={root} is not a folder; point it at your images")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    mode, images, kept, bad = ("L" if cfg.channels == 1 else "RGB"), [], [], []
    for path in tqdm(paths, desc=f"reading {root.name}", unit="img", disable=len(paths) < 2000, leave=False):
        try:
            with Image.open(path) as im:
                images.append(np.asarray(_square(im.convert(mode), cfg.image_size)))
                kept.append(path)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:  # the last: too many pixels
            bad.append(f"{path.name} ({e.__class__.__name__})")
    if bad:
        log.warning("data=folder: skipped %d unreadable file(s): %s", len(bad), ", ".join(bad[:5]))
    if not images:
        raise DatasetNotFoundError(
            f"data=folder: no readable images in {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    folders = [p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else None for p in kept]
    classes = sorted(set(folders) - {None})
    if None in folders or len(classes) < 2:
        return np.stack(images), None, []
    return np.stack(images), np.array([classes.index(f) for f in folders]), classes


def _square(im, size: int):
    """Centre-crop to a square, then resize to size x size."""
    from PIL import Image

    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    return im.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)


for _name, _read in {"digits": _digits, "mnist": _idx, "fashion_mnist": _idx, "cifar10": _cifar10,
                     "folder": _folder}.items():
    DATASETS.register(_name, FolderDataConfig if _name == "folder" else ImageDataConfig, check_images)(
        lambda cfg, seed=0, read=_read: load(cfg, read))
