"""`ganlab eval PATH data=NAME`: images (or points) made by any tool, scored with a dataset's yardstick,
so a notebook's samples sit beside ganlab's runs: a folder of image files, or an .npz of `images`
(N, H, W, C or N, C, H, W; uint8 in [0, 255], floats in [0, 1], or floats with negatives in [-1, 1])
or `points` (N, D). Anything outside those ranges, and a file crafted to hang or to exhaust memory, is
refused in one line before it is scored."""

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
MAX_PIXELS = 4096 * 4096  # an image file larger than this is refused before it is decoded (a yardstick sees <= 64 x 64)


def read_samples(path: Path) -> np.ndarray:
    """The arrays of an .npz (its `images` or `points`, else its only array) or of a folder's image files
    (regular files only: a FIFO or a device would block or never end)."""
    if path.suffix == ".npz":
        return _read_npz(path)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_FILES and p.is_file()) \
        if path.is_dir() else []
    if not files:
        raise ConfigError(f"{path}: no images to score; give a folder of image files ({', '.join(IMAGE_FILES)}) "
                          f"or an .npz with an `images` or `points` array")
    images = [_read_image(f) for f in files]
    if len({a.shape for a in images}) > 1:
        raise ConfigError(f"{path}: the images differ in size ({images[0].shape[:2]} and others); give images of one size")
    return np.stack(images)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # reads the header alone
            if image.width * image.height > MAX_PIXELS:
                raise ConfigError(f"{path}: an image of {image.width} x {image.height} pixels, far larger than any "
                                  f"sample; give samples at the data's size")
            return np.asarray(image.convert("RGB"))
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, ValueError) as e:
        raise ConfigError(f"{path} cannot be read as an image ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
                          ) from None


def _read_npz(path: Path) -> np.ndarray:
    """The samples' array of an .npz, its header checked against the bytes it holds before anything is
    allocated (a header may declare terabytes)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = {m.filename[:-4]: m for m in archive.infolist() if m.filename.endswith(".npy")}
            name = next((n for n in ("images", "points") if n in members), next(iter(members)) if len(members) == 1
                        else None)
            if name is None:
                raise ConfigError(f"{path} holds {', '.join(members) or 'no arrays'}; name the samples' array `images` "
                                  f"or `points`")
            with archive.open(members[name]) as f:
                shape, _, dtype = _npy_header(f)
            declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if dtype.hasobject or declared > members[name].file_size:
                what = "Python objects" if dtype.hasobject else f"{declared:,} bytes of {dtype} {shape}"
                raise ConfigError(f"{path}: its `{name}` header declares {what} but the file holds "
                                  f"{members[name].file_size:,} bytes; refused (a cut or crafted file)")
            return np.load(path)[name]
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
        raise ConfigError(f"{path} cannot be read as an .npz ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
                          ) from None


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    """An .npy member's (shape, fortran order, dtype), read from its header alone."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"an .npy format version {version[0]}.{version[1]} header; save it with numpy's np.savez")


def checked_values(array: np.ndarray, source: Path) -> np.ndarray:
    """Refuse samples that no documented range holds: too few to score, not real numbers, not finite,
    integers other than bytes (0-255), images outside [-1, 1]."""
    if len(array) < 2:
        raise ConfigError(f"{source}: {len(array)} samples; the scores compare spreads and need at least 2 (give as "
                          f"many as the run's metrics.n_samples)")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == np.bool_):
        raise ConfigError(f"{source}: samples of dtype {array.dtype}; give real numbers (uint8 or floats)")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ConfigError(f"{source}: {int((~np.isfinite(array)).sum()):,} of the values are NaN or infinite; give "
                          f"finite samples")
    if np.issubdtype(array.dtype, np.integer) and array.dtype != np.uint8 and (array.min() < 0 or array.max() > 255):
        raise ConfigError(f"{source}: integer samples from {array.min()} to {array.max()}; images as integers are "
                          f"bytes, 0 to 255")
    return array


def as_images(array: np.ndarray, shape: tuple[int, int, int], source: Path) -> torch.Tensor:
    """`array` as (N, C, H, W) in [-1, 1] with the data's channels and size (resized, with a note, if not)."""
    if array.ndim == 3:  # grey (N, H, W)
        array = array[:, None]
    if array.ndim != 4:
        raise ConfigError(f"{source}: samples of shape {array.shape} are not images (N, H, W, C) or (N, C, H, W)")
    if np.issubdtype(array.dtype, np.floating) and (array.min() < -1 - 1e-3 or array.max() > 1 + 1e-3):
        raise ConfigError(f"{source}: float images from {array.min():.4g} to {array.max():.4g}; floats are read in "
                          f"[0, 1] or [-1, 1] (divide bytes by 255)")
    x = torch.from_numpy(np.ascontiguousarray(array))
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    integer = not np.issubdtype(array.dtype, np.floating)
    x = (x.float() / 127.5 - 1) if integer else x.float() if x.min() < 0 else x.float() * 2 - 1
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
    array = checked_values(read_samples(path), path)
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

