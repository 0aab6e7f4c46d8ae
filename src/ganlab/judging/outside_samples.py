"""`ganlab eval PATH data=NAME`: images (or points) made by any tool, scored with a dataset's yardstick,
so a notebook's samples sit beside ganlab's runs: a folder of image files, or an .npz of `images`
(N, H, W, C or N, C, H, W; uint8 in [0, 255], floats in [0, 1], or floats with negatives in [-1, 1])
or `points` (N, D)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganlab.parts.data import load_dataset
from ganlab.parts.registry import ConfigError

log = logging.getLogger(__name__)

IMAGE_FILES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")


def read_samples(path: Path) -> np.ndarray:
    """The arrays of an .npz (its `images` or `points`, else its only array) or of a folder's image files."""
    if path.suffix == ".npz":
        try:
            arrays = np.load(path)
            names = list(arrays.files)
            name = next((n for n in ("images", "points") if n in names), names[0] if len(names) == 1 else None)
            if name is None:
                raise ConfigError(f"{path} holds {', '.join(names)}; name the samples' array `images` or `points`")
            return arrays[name]
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path} cannot be read as an .npz ({e})") from None
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_FILES) if path.is_dir() else []
    if not files:
        raise ConfigError(f"{path}: no images to score; give a folder of image files ({', '.join(IMAGE_FILES)}) "
                          f"or an .npz with an `images` or `points` array")
    from PIL import Image

    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    if len({a.shape for a in images}) > 1:
        raise ConfigError(f"{path}: the images differ in size ({images[0].shape[:2]} and others); give images of one size")
    return np.stack(images)


def as_images(array: np.ndarray, shape: tuple[int, int, int], source: Path) -> torch.Tensor:
    """`array` as (N, C, H, W) in [-1, 1] with the data's channels and size (resized, with a note, if not)."""
    if array.ndim == 3:  # grey (N, H, W)
        array = array[:, None]
    if array.ndim != 4:
        raise ConfigError(f"{source}: samples of shape {array.shape} are not images (N, H, W, C) or (N, C, H, W)")
    x = torch.from_numpy(np.ascontiguousarray(array))
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    x = (x.float() / 127.5 - 1) if array.dtype == np.uint8 else x.float() if x.min() < 0 else x.float() * 2 - 1
    channels, height, width = shape
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (height, width):
        log.warning("%s: images of %dx%d resized to the data's %dx%d", source, x.shape[-2], x.shape[-1], height, width)
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(-1, 1)


def evaluate_samples(path: Path, cfg, seed: int = 0) -> dict[str, Any]:
    """The quality scores of the samples at `path` against the yardstick of `cfg.data` (and Inception's
    when metrics.inception_weights is given), beside the real-vs-real floor."""
    from ganlab.quality import at_the_floor, build_evaluator

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    array = read_samples(path)
    data = load_dataset(cfg.data, cfg.seed)
    if data.is_image:
        samples = as_images(array, tuple(data.sample_shape), path)
    elif array.ndim == 2 and array.shape[1:] == tuple(data.sample_shape):
        samples = torch.from_numpy(np.ascontiguousarray(array)).float()
    else:
        raise ConfigError(f"{path}: samples of shape {array.shape}, but data={cfg.data.name} holds points of shape "
                          f"{tuple(data.sample_shape)}")
    evaluator = build_evaluator(cfg, data)
    if len(samples) < evaluator.n_scored:
        log.warning("%d samples given; the floor uses %d, and Frechet distance is biased by the sample size: give %d "
                    "for a like-for-like comparison", len(samples), evaluator.n_scored, evaluator.n_scored)
    g = torch.Generator().manual_seed(seed)
    samples = samples[torch.randperm(len(samples), generator=g)]  # the scored subset: a seeded draw, not the first files
    scores, noise = evaluator.score(samples), evaluator.noise(samples)
    return {"samples": str(path), "n": min(len(samples), evaluator.n_scored), "metric": evaluator.primary,
            "scores": scores, "noise": noise, "floor": evaluator.floor,
            "at_the_floor": at_the_floor(scores, noise, evaluator.floor), "scored_with": evaluator.info}

