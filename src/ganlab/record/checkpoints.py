"""A run's checkpoint: one type (Checkpoint) that writes it, reads it back safely (weights_only) and upgrades
every earlier format to the current one, with the RNG states it carries so that a resumed run continues
exactly."""

from __future__ import annotations

import pickle
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from omegaconf import DictConfig

from ganlab.parts.data import data_schema
from ganlab.record.run_folder import CHECKPOINTS, RunFolder, is_run


CHECKPOINT_FORMAT = 5  # upgraded when read: 1 before the parts had their own state; 2 counted a finished run's
# partial last epoch (its steps ran out mid-epoch) in "epoch", where 3 counts whole passes only; 4 draws G's
# noise, WGAN-GP's interpolation weights and DiffAugment's transforms from the run's own stream (its state:
# parts["noise"]), where 1-3 drew them from torch's global one; 5 draws the dropout masks from that stream too,
# where 4 drew them from torch's global one (parts["global_dropout"] says so for a run begun in format 4)
WHERE = ("config", "sample_shape", "step", "epoch", "finished", "classes", "elapsed", "rng", "threads")


@dataclass
class Checkpoint:
    """Where a run stands and each of its parts' states: all that a resume, `sample` and `eval` need."""
    config: dict[str, Any]  # the run's config as plain data: a run is rebuilt from it
    sample_shape: list[int]  # one sample's shape (a user's data is known only once loaded)
    step: int  # G steps done
    epoch: int  # epochs completed: whole passes over the data
    finished: bool  # the run's end-of-run work was done
    elapsed: float  # seconds of training
    parts: dict[str, Any]  # each part's state_dict by name: generator, discriminator, opt_g, opt_d, augment,
    # generator_ema, batches, recorder, evaluation, doctor, noise (those the run has)
    classes: Optional[list[str]] = None  # a conditional GAN's, by label
    rng: dict = field(default_factory=lambda: rng_state())  # the global RNGs, for a resume bit for bit
    threads: int = field(default_factory=torch.get_num_threads)  # a resume uses them again: another count rounds
    # differently

    def write(self, run: RunFolder, name: str) -> Path:
        """Into the run's checkpoints/ as `name`, atomically (one flat dict)."""
        return run.save_checkpoint({
            "format": CHECKPOINT_FORMAT, "config": self.config, "sample_shape": list(self.sample_shape),
            "step": self.step, "epoch": self.epoch, "finished": self.finished,
            **({"classes": self.classes} if self.classes else {}),
            "elapsed": self.elapsed, "rng": self.rng, "threads": self.threads, **compact(self.parts)}, name)

    @classmethod
    def read(cls, path: Path) -> "Checkpoint":
        """A checkpoint of any format (load_checkpoint), its parts' states apart from where the run stands."""
        state = load_checkpoint(path)
        return cls(**{k: state.get(k) for k in WHERE}, parts={k: v for k, v in state.items() if k not in WHERE
                                                               and k != "format"})

    @property
    def generator_weights(self) -> dict[str, torch.Tensor]:
        """The EMA generator's where the run kept one: it is what the run's grids and scores came from."""
        return self.parts.get("generator_ema", self.parts["generator"])


def compact(state: Any) -> Any:
    """The state with each tensor that views a larger one (a stack member's slice of the stacked weights) copied
    out: torch.save would write the whole of what it views."""
    if isinstance(state, dict):
        return {k: compact(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(compact(v) for v in state)
    if torch.is_tensor(state) and state.untyped_storage().nbytes() > state.numel() * state.element_size():
        return state.clone()
    return state


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
    """A checkpoint in the current format (CHECKPOINT_FORMAT): format 1 (flat keys) is regrouped by part, and
    formats 1-2 no longer count a finished run's partial last epoch; 1-3 keep drawing z from the global stream
    (they have no parts["noise"]); 4 keeps drawing its dropout masks from it."""
    form = state.get("format", 1)
    if form >= CHECKPOINT_FORMAT or "batches" not in state and "progress" not in state:  # current, or weights
        return state
    if form == 1:
        progress = state["progress"]
        state = {**state, "batches": {"rng": state["order_rng"], "order": state["order"], "cursor": state["cursor"]},
                 "recorder": {"sums": state["sums"], "count": state["count"], "last_row": progress["last_row"]},
                 "evaluation": {"fixed_noise": state["fixed_noise"], "best": state["best"],
                                "last_eval": progress["last_eval"], "seconds": progress["eval_seconds"]}}
    if form <= 2 and state.get("finished") and state["batches"]["order"] is not None:  # it ended mid-epoch
        state = {**state, "epoch": state["epoch"] - 1}
    if form == 4:  # its noise from its own stream, its dropout masks from torch's
        state = {**state, "global_dropout": True}
    return {**state, "format": CHECKPOINT_FORMAT}


def refused_global(error: pickle.UnpicklingError) -> str:
    """The line of torch's weights_only refusal that names what the file asked for ("Unsupported global: ...")."""
    return next((line.strip() for line in str(error).splitlines() if "global" in line.lower()), "")


def checkpoint_path(run_dir: Path, which: str) -> Path:
    path = find_run(run_dir) / CHECKPOINTS / f"{which}.pt"
    if not path.exists():
        hint = " (runs with metrics.enabled=false keep only last: use --checkpoint last)" if which == "best" else ""
        raise CheckpointError(f"{path} does not exist{hint}")
    return path


def sample_shape(cfg: DictConfig, checkpoint: Checkpoint | None = None) -> tuple[int, ...]:
    """The shape of one sample of the run's data: as its checkpoint recorded it (a user's data is known only
    once loaded), else from its config."""
    if checkpoint and checkpoint.sample_shape:
        return tuple(checkpoint.sample_shape)
    return data_schema(cfg.data).sample_shape(cfg.data)


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
