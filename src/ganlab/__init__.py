"""ganlab: a config-driven GAN experiment runner.

From Python: ganlab.compose, ganlab.train, ganlab.resume, ganlab.load_run, ganlab.runs and
ganlab.compare (ganlab/api; docs/python.md). They load on first use, so `import ganlab` stays light.
"""

import os
from pathlib import Path

# OpenMP threads that wait for work sleep instead of spinning (before torch loads its OpenMP): on a
# machine shared with other busy processes, spinning threads steal the cores they wait for, and a
# 10-epoch digits run took 10x longer beside two busy processes (benchmarks/threads_under_load.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# The config groups ship inside the package (a wheel installed anywhere has them); the repository's
# top-level conf/ is a link to this folder.
CONF_DIR = Path(__file__).resolve().parent / "conf"

API = ("compose", "config", "train", "resume", "load_run", "runs", "compare", "Run", "Comparison", "ConfigError")


def __getattr__(name: str):
    if name in API:
        from ganlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'ganlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
