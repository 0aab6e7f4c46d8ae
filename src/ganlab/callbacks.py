"""Hydra callbacks: checks that must happen before Hydra writes anything into a run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganlab.run_folder import RUN_MARKERS


class RefuseExistingRun(Callback):
    """A single run never writes into a folder that already holds a run (Hydra would overwrite
    its .hydra/ before the job starts, so the check runs here, first)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        existing = [m for m in RUN_MARKERS if (run_dir / m).exists()]
        if existing:
            print(f"ganlab: error: {run_dir} already holds a run ({', '.join(existing)}); "
                  f"choose a new folder with hydra.run.dir=PATH", file=sys.stderr)
            raise SystemExit(2)
