"""Memory checks before big allocations: a setting that cannot fit is refused with one line naming
the key, instead of letting torch take the machine's memory (or the kernel kill the process)."""

from __future__ import annotations

import math
import os

import torch

from ganlab.config import ConfigError

BYTES_PER_VALUE = 4  # float32


def available_bytes() -> int:
    """Memory this process can still take: MemAvailable on Linux, else physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def require(n_values: float, what: str, fix: str) -> None:
    """Refuse when `n_values` float32 values would not fit in the memory available now."""
    need, free = n_values * BYTES_PER_VALUE, available_bytes()
    if need > free:
        raise ConfigError(f"{what} needs {_gib(need)} of memory, more than the {_gib(free)} available; {fix}")


def network_values(build) -> int:
    """Values held while training a network (weights, gradients, two Adam moments), counted by
    building it on the meta device, which allocates nothing."""
    with torch.device("meta"):
        net = build()
    return 4 * sum(p.numel() for p in net.parameters())


def sample_values(n: int, shape: tuple[int, ...]) -> int:
    return n * math.prod(shape)


def is_out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"
