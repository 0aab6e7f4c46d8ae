"""Reading a run back: its checkpoints (safely, with weights_only; every format upgraded to the current
one), the generator they hold, and the RNG states they carry so that a resumed run continues exactly."""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ganlab.parts.data import data_schema
from ganlab.parts.networks.conditional import build_generator
from ganlab.record.run_folder import CHECKPOINTS, is_run


CHECKPOINT_FORMAT = 2  # 1: ganlab before the parts had their own state (upgraded when read)


class CheckpointError(RuntimeError):
    """A run or checkpoint that cannot be read; the message names the file and what to do."""


def find_run(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    if not is_run(run_dir):
        raise CheckpointError(f"{run_dir} is not a ganlab run folder (no summary.json, checkpoints/ or .hydra/); "
                              f"give a folder under outputs/runs/ or a sweep's job folder")
    return run_dir


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, loaded with weights_only=True: a file crafted to run code is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut one loses its directory
        raise CheckpointError(f"{path} is truncated or not a PyTorch checkpoint (not a complete torch.save archive)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = refused_global(e)
        raise CheckpointError(f"{path} holds objects other than tensors and plain data, refused for safety "
                              f"(torch.load weights_only=True{': ' + reason if reason else ''})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path} is truncated or not a PyTorch checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or not {"generator", "config"} <= set(state):
        raise CheckpointError(f"{path} is not a ganlab checkpoint (no generator weights and config in it)")
    return upgraded(state)


def upgraded(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint in the current format (CHECKPOINT_FORMAT); format 1 (flat keys) is regrouped by part."""
    if state.get("format", 1) >= CHECKPOINT_FORMAT or "progress" not in state:  # current, or weights alone
        return state
    progress = state["progress"]
    return {**state, "batches": {"rng": state["order_rng"], "order": state["order"], "cursor": state["cursor"]},
            "recorder": {"sums": state["sums"], "count": state["count"], "last_row": progress["last_row"]},
            "evaluation": {"fixed_noise": state["fixed_noise"], "best": state["best"],
                           "last_eval": progress["last_eval"], "seconds": progress["eval_seconds"]}}


def refused_global(error: pickle.UnpicklingError) -> str:
    """The line of torch's weights_only refusal that names what the file asked for ("Unsupported global: ...")."""
    return next((line.strip() for line in str(error).splitlines() if "global" in line.lower()), "")


def checkpoint_path(run_dir: Path, which: str) -> Path:
    path = find_run(run_dir) / CHECKPOINTS / f"{which}.pt"
    if not path.exists():
        hint = " (runs with metrics.enabled=false keep only last: use --checkpoint last)" if which == "best" else ""
        raise CheckpointError(f"{path} does not exist{hint}")
    return path


def sample_shape(cfg: DictConfig, state: dict[str, Any] | None = None) -> tuple[int, ...]:
    """The shape of one sample of the run's data: as its checkpoint `state` recorded it (a user's data
    is known only once loaded), else from its config."""
    if state and "sample_shape" in state:
        return tuple(state["sample_shape"])
    return data_schema(cfg.data).sample_shape(cfg.data)


def load_generator(run_dir: Path, which: str = "best") -> tuple[torch.nn.Module, DictConfig, dict[str, Any]]:
    """The generator of a run's `which` checkpoint (best or last), in eval mode on the CPU."""
    path = checkpoint_path(run_dir, which)
    state = load_checkpoint(path)
    cfg = OmegaConf.create(state["config"])
    generator = build_generator(cfg.generator, sample_shape(cfg, state), len(state.get("classes") or []))
    try:  # the EMA generator where the run kept one: it is what the run's grids and scores came from
        generator.load_state_dict(state.get("generator_ema", state["generator"]))
    except RuntimeError as e:
        raise CheckpointError(f"{path}: its generator weights do not fit its config ({str(e).splitlines()[0]})") from None
    return generator.eval(), cfg, state


def rng_state() -> dict:
    """The global RNGs (torch, CUDA, numpy, python) as plain data a weights_only checkpoint holds."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
