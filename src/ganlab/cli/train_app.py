"""The Hydra app behind `ganlab train`: one job, in a single run or as one job of a sweep."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ganlab import CONF_DIR
from ganlab.config import ConfigError
from ganlab.parts.data import DatasetError, DatasetNotFoundError
from ganlab.record.catalog import load_run
from ganlab.record.run_folder import HYDRA_NAMES, RunFolder, RunFolderError, claim_new
from ganlab.record.summary import Summary
from ganlab.training.memory import is_out_of_memory
from ganlab.training.sweep import parallel_jobs

log = logging.getLogger("ganlab")

# Errors a user fixes by changing the command; shown as one line, no traceback.
USER_ERRORS = (ConfigError, DatasetError, DatasetNotFoundError, RunFolderError)


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def train_app(cfg: DictConfig) -> float | None:
    from ganlab.training.job import train

    hydra_cfg = HydraConfig.get()
    run_dir, sweeping = Path(hydra_cfg.runtime.output_dir), hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if sweeping:  # Hydra made the job's folder and wrote its .hydra/ and train.log into it
            claim_new(run_dir, allow=HYDRA_NAMES)
        summary = train(cfg, run_dir, jobs=parallel_jobs(hydra_cfg) if sweeping else 1)
    except KeyboardInterrupt:
        if sweeping:
            raise
        print(f"ganlab: interrupted; checkpoint saved. Continue with: ganlab resume {run_dir}", file=sys.stderr)
        raise SystemExit(130) from None
    except USER_ERRORS as e:
        if sweeping:  # the sweep goes on; its table lists this job as failed
            Summary.mark_failed(run_dir, e)
            return None
        print(f"ganlab: error: {e}", file=sys.stderr)
        RunFolder(run_dir).abandon()  # nothing was trained: remove what this command wrote, and only that
        raise SystemExit(2) from None
    except Exception as e:
        if not sweeping and is_out_of_memory(e):
            print(f"ganlab: error: out of memory ({str(e).splitlines()[0][:200]}); lower trainer.batch_size, the "
                  f"network widths or the sample counts", file=sys.stderr)
            RunFolder(run_dir).abandon()
            raise SystemExit(2) from None
        if not sweeping:
            raise
        log.exception("job failed: %s", run_dir.name)
        Summary.mark_failed(run_dir, e)
        return None
    if summary["status"] != "completed" and not sweeping:
        print(f"ganlab: run {summary['status']}: {summary.get('error', '')}", file=sys.stderr)
        print(run_dir)
        raise SystemExit(1)
    if not sweeping:
        print(load_run(run_dir).headline())
    print(run_dir)
    best = summary.get("quality", {}).get("best") or {}
    return best.get("score")  # what a sweeper (Optuna) minimises


