"""`ganlab resume RUN_DIR [key=value ...]`: continue a run from checkpoints/last.pt, bit for bit."""

from __future__ import annotations

import dataclasses
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganlab.config import ConfigError
from ganlab.config.schema import HOW_NOT_WHAT
from ganlab.record.checkpoints import Checkpoint, CheckpointError, find_run
from ganlab.record.run_folder import CHECKPOINTS, LAST_PT

# What a resume may change: how (not what) it runs, how long to train, and how often it records.
RESUMABLE = (*HOW_NOT_WHAT, "trainer.epochs", "trainer.steps", "trainer.sample_every", "trainer.checkpoint_every",
             "trainer.checkpoint_minutes")


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


def with_later_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A config saved by an earlier ganlab, with the settings added since at their defaults, which
    change nothing (checkpoint_minutes, ema_decay, r1_gamma, augment, conditioning, pack, metrics.primary, ...): such a run still resumes."""
    from ganlab.config.schema import MetricsConfig, TrainerConfig
    from ganlab.parts.augment import AugmentConfig
    from ganlab.parts.losses import LossConfig
    from ganlab.parts.networks.layers import DiscriminatorNetConfig, GeneratorNetConfig

    config.setdefault("augment", dataclasses.asdict(AugmentConfig()))
    for group, schema in (("trainer", TrainerConfig), ("metrics", MetricsConfig), ("loss", LossConfig),
                          ("augment", AugmentConfig), ("generator", GeneratorNetConfig),
                          ("discriminator", DiscriminatorNetConfig)):
        node = config.get(group)
        if isinstance(node, dict) and "_target_" not in node:  # a user's part has only its own arguments
            for f in dataclasses.fields(schema):
                if f.name not in node and f.default is not dataclasses.MISSING:
                    node[f.name] = f.default
    return config


def requested_config(run_dir: Path, saved: dict[str, Any], overrides: list[str]) -> DictConfig:
    """The run's saved config with the resume's overrides, refusing changes a resume cannot honour."""
    saved = with_later_settings(saved)
    folder_config = run_dir / ".hydra" / "config.yaml"
    if folder_config.is_file():
        written = OmegaConf.to_container(OmegaConf.load(folder_config), resolve=True)
        if not isinstance(written, dict) or not written:
            raise ConfigError(f"{folder_config} is empty or not a config; the checkpoint holds the config the run "
                              f"used: move the file away and resume again")
        written = with_later_settings(written)
        mismatch = {k: v for k, v in differences(written, saved).items() if k not in RESUMABLE}
        if mismatch:
            raise CheckpointError(f"{run_dir / CHECKPOINTS / LAST_PT} was not written by this run's config "
                                  f"(.hydra/config.yaml); keys differ: {_describe(mismatch, 'run', 'checkpoint')}")
    requested = OmegaConf.create(saved)
    for override in overrides:
        key, sep, _ = override.partition("=")
        if not sep or OmegaConf.select(requested, key, default=KeyError) is KeyError:
            raise ConfigError(f"{override!r} is not key=value for a key of this run's config "
                              f"(e.g. trainer.epochs=100)")
        OmegaConf.update(requested, key, OmegaConf.select(_typed(override), key))
    changed = {k: v for k, v in differences(saved, OmegaConf.to_container(requested)).items() if k not in RESUMABLE}
    if changed:
        raise ConfigError(f"a resume continues the run it resumes; these keys differ from the checkpoint: "
                          f"{_describe(changed, 'checkpoint', 'requested')}. Only {', '.join(RESUMABLE)} may change; "
                          f"start a new run for the rest")
    return requested


def _typed(override: str) -> DictConfig:
    """One key=value override, checked against the config schema's type (trainer.epochs=abc or 1.5 fail
    as they do for `ganlab train`)."""
    from ganlab.config import TrainConfig

    try:
        return OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.from_dotlist([override]))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{override!r}: {str(e).splitlines()[0]}") from None


@contextmanager
def log_to(*run_dirs: Path) -> Iterator[None]:
    """Append the session's log to the runs' train.log files (a resumed run's, a stack's members'), and show it
    on the console."""
    formatter = logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    before = root.handlers[:]  # a sweep's process: Hydra's, with its last job's train.log; set aside meanwhile
    handlers = (*(logging.FileHandler(d / "train.log", mode="a") for d in run_dirs), logging.StreamHandler())
    root.handlers = []
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.handlers = before


def saved_run(run_dir: Path, overrides: list[str]) -> tuple[DictConfig, Checkpoint | None]:
    """The config a run continues with (its saved one with `overrides`) and its checkpoints/last.pt (None
    when it has none yet: killed before its first, or a stack's member not yet started)."""
    last = run_dir / CHECKPOINTS / LAST_PT
    if last.exists():
        state = Checkpoint.read(last)
        return requested_config(run_dir, state.config, overrides), state
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise CheckpointError(f"{run_dir} holds neither {CHECKPOINTS}/{LAST_PT} nor .hydra/config.yaml; nothing to "
                              f"resume from")
    return requested_config(run_dir, OmegaConf.to_container(OmegaConf.load(saved), resolve=True), overrides), None


def resume_run(run_dir: Path, overrides: list[str], jobs: int = 1) -> dict[str, Any]:
    """Continue a run from checkpoints/last.pt; a run killed before its first checkpoint starts over
    in its folder with its own config and seed (so it ends as an uninterrupted run would); `jobs` share the
    machine (Job's)."""
    from ganlab.config import validate
    from ganlab.training.job import run_job

    run_dir = find_run(run_dir)
    cfg, state = saved_run(run_dir, overrides)
    validate(cfg)
    with log_to(run_dir):
        if state is None:
            logging.getLogger("ganlab").warning("%s has no checkpoint yet (killed before its first one): starting "
                                                "it over in the same folder with the same config and seed", run_dir)
        return run_job(cfg, run_dir, resume=state, restart=state is None, jobs=jobs)
