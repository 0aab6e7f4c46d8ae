"""`ganlab resume RUN_DIR [key=value ...]`: continue a run from checkpoints/last.pt, bit for bit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ganlab.checkpoints import CheckpointError, find_run, load_checkpoint
from ganlab.config import ConfigError

# What a resume may change: how long to train, and how (not what) it runs.
RESUMABLE = ("trainer.epochs", "trainer.steps", "trainer.progress", "trainer.threads", "trainer.device",
             "trainer.sample_every", "trainer.checkpoint_every")


def differences(a: Any, b: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """The dotted keys whose values differ between two plain config trees."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(a) | set(b), key=str):
            out.update(differences(a.get(key), b.get(key), f"{prefix}{key}."))
        return out
    return {} if a == b else {prefix.rstrip("."): (a, b)}


def _describe(diffs: dict[str, tuple[Any, Any]], left: str, right: str) -> str:
    return "; ".join(f"{k} ({left} {a!r}, {right} {b!r})" for k, (a, b) in diffs.items())


def requested_config(run_dir: Path, state: dict[str, Any], overrides: list[str]) -> DictConfig:
    """The checkpoint's config with the resume's overrides, refusing changes a resume cannot honour."""
    saved = state["config"]
    folder_config = run_dir / ".hydra" / "config.yaml"
    if folder_config.is_file():
        mismatch = {k: v for k, v in differences(OmegaConf.to_container(OmegaConf.load(folder_config), resolve=True),
                                                 saved).items() if k not in RESUMABLE}
        if mismatch:
            raise CheckpointError(f"{run_dir / 'checkpoints' / 'last.pt'} was not written by this run's config "
                                  f"(.hydra/config.yaml); keys differ: {_describe(mismatch, 'run', 'checkpoint')}")
    requested = OmegaConf.create(saved)
    for override in overrides:
        key, sep, _ = override.partition("=")
        if not sep or OmegaConf.select(requested, key, default=KeyError) is KeyError:
            raise ConfigError(f"{override!r} is not key=value for a key of this run's config "
                              f"(e.g. trainer.epochs=100)")
        OmegaConf.update(requested, key, OmegaConf.select(OmegaConf.from_dotlist([override]), key))
    changed = {k: v for k, v in differences(saved, OmegaConf.to_container(requested)).items() if k not in RESUMABLE}
    if changed:
        raise ConfigError(f"a resume continues the run it resumes; these keys differ from the checkpoint: "
                          f"{_describe(changed, 'checkpoint', 'requested')}. Only {', '.join(RESUMABLE)} may change; "
                          f"start a new run for the rest")
    return requested


def log_to(run_dir: Path) -> None:
    """Append the resumed session's log to the run's train.log, and show it on the console."""
    formatter = logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (logging.FileHandler(run_dir / "train.log", mode="a"), logging.StreamHandler()):
        handler.setFormatter(formatter)
        root.addHandler(handler)


def resume_run(run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    from ganlab.config import validate
    from ganlab.train import train

    run_dir = find_run(run_dir)
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    cfg = requested_config(run_dir, state, overrides)
    validate(cfg)
    log_to(run_dir)
    return train(cfg, run_dir, resume=state)
