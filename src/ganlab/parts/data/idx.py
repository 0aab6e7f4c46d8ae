"""Reader for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ganlab.parts.data import DatasetError

FIX = "download the file again or remove it"

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Decode one IDX file, gzipped or not (told by its first bytes), into an array of its shape."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: cannot be read as an IDX file ({e}); {FIX}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number); {FIX}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(f"{path}: truncated or padded IDX file ({len(raw)} bytes, expected {expected}); {FIX}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()
