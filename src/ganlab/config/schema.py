"""The schema of a run (the root config, trainer, metrics, logger) and the ConfigStore.

Each part's option keeps its schema beside its builder (ganlab/parts/) and registers both; here they
are stored in Hydra's ConfigStore under schema/ and named in each YAML file's defaults list
(`- /schema/loss@_here_: wgan_gp`), so a misspelled key or a wrong type fails at composition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from ganlab import CONF_DIR
from ganlab.parts.augment import AugmentConfig
from ganlab.parts.data.images import ImageDataConfig
from ganlab.parts.data.mixtures import GridDataConfig, RingDataConfig
from ganlab.parts.losses import LossConfig
from ganlab.parts.registry import PARTS, option_name


# -------------------------------------------------------------------------------- trainer
@dataclass
class TrainerConfig:
    epochs: int = 60  # passes over the data
    steps: Optional[int] = None  # stop after this many G steps instead (null: use epochs)
    batch_size: int = 64
    n_critic: int = 1  # D steps per G step
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda
    log_every: int = 10  # G steps between metrics.csv rows (averaged over the interval)
    sample_every: int = 1  # epochs between sample grids
    checkpoint_every: int = 10  # epochs between checkpoints/last.pt writes
    checkpoint_minutes: float = 5.0  # also write last.pt after this many minutes without one
    ema_decay: float = 0.0  # generator EMA: 0 = off, 0.999 a typical value (grids, scores, best.pt use it)
    ema_start: int = 0  # G steps before averaging begins (the EMA copies G until then)
    n_grid: int = 64  # images in each sample grid (points for 1-D/2-D data: 1000 used)
    threads: Optional[int] = None  # torch CPU threads (null: torch's default)
    progress: bool = True  # tqdm progress bar
    # a sweep's jobs that differ only in seed (and numbers: stacked_runs.SHARED_NUMBERS) train as stacks of K, one
    # computation each (training/stack.py); auto: K measured at the sweep's end for these networks on this
    # processor (1 where a stack does not pay or cannot be built); 1: each job its own process
    stack: str = "auto"
    precision: str = "32"  # 32 | bf16 (autocast) | fp16 (autocast and a gradient scaler; CUDA only) | auto (bf16 on a CPU that has bf16 instructions, else 32)
    channels_last: bool = False  # NHWC memory layout for images
    compile: bool = False  # torch.compile G and D (compiling takes a while first)
    cudnn_benchmark: bool = False  # let cuDNN pick the fastest convolution algorithms (CUDA)


@dataclass
class MetricsConfig:
    # epochs between quality evaluations (and one at the end), counted in G steps: with trainer.n_critic=k an
    # epoch of the data holds 1/k the G steps, so evaluations come every `every x k` epochs of the data and a
    # WGAN-GP run (k=5) is evaluated as often per G step as a BCE run
    every: int = 5
    n_samples: int = 2000  # generated samples per evaluation (and real ones in the reference)
    nearest_k: int = 5  # k of precision / recall / density / coverage
    classifier_steps: int = 1500  # training steps of the per-dataset feature classifier
    cache_dir: str = "~/.cache/ganlab/classifiers"  # where trained classifiers and floors are kept
    enabled: bool = True  # false: no quality scores, no best.pt
    # Inception FID/KID/IS beside the others (images): the path of torch-fidelity's Inception weights
    # (weights-inception-2015-12-05-6726825d.pth); null: the torch hub cache's copy if there, else none
    inception_weights: Optional[str] = None
    primary: Optional[str] = None  # the score best.pt and compare rank by (null: fd_classifier, swd for points)


@dataclass
class LoggerConfig:
    name: str = "csv"  # csv (metrics.csv and quality.csv only) | tensorboard | mlflow (the CSVs and the tracker)


@dataclass
class MLflowLoggerConfig(LoggerConfig):
    name: str = "mlflow"
    tracking_uri: Optional[str] = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the current folder
    experiment: Optional[str] = None  # null: the sweep's folder name for a sweep's jobs, else "ganlab"


@dataclass
class TrainConfig:
    name: str = MISSING  # short name used in the run folder
    seed: int = 0
    data: Any = MISSING
    generator: Any = MISSING
    discriminator: Any = MISSING
    loss: Any = MISSING
    optim: Any = MISSING
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


# Keys that say how a run is carried out, not what it trains: a sweep's job folders are named
# without them, compare does not count them as swept, and a resume may change them.
HOW_NOT_WHAT = ("trainer.device", "trainer.progress", "trainer.threads", "trainer.stack", "logger.tracking_uri")

LOGGERS = {"csv": LoggerConfig, "tensorboard": LoggerConfig, "mlflow": MLflowLoggerConfig}  # logger=NAME -> schema

SCHEMAS = {  # the groups that are not swappable parts; the parts' schemas come from their registries
    ("trainer", "trainer"): TrainerConfig,
    ("metrics", "metrics"): MetricsConfig,
    ("logger", "logger"): LoggerConfig,
    ("logger", "mlflow"): MLflowLoggerConfig,
    # the schema names YAML files used before the registries, kept for a user's own --config-dir files
    ("data", "image"): ImageDataConfig, ("data", "ring"): RingDataConfig, ("data", "grid"): GridDataConfig,
    ("loss", "loss"): LossConfig,
}


def path_safe(text: str, limit: int = 200) -> str:
    """A folder name from a sweep job's overrides: no '/' (a path in a value would nest folders) and,
    past `limit` characters (file systems allow 255), cut with a hash of the whole kept unique."""
    import hashlib

    text = str(text).replace("/", "_")
    return text if len(text) <= limit else f"{text[:limit - 9]}~{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def register_resolvers() -> None:
    """The interpolations ganlab's configs use, for composing and for reading a saved config back."""
    OmegaConf.register_new_resolver("path_safe", path_safe, replace=True)
    OmegaConf.register_new_resolver("how_not_what", lambda: list(HOW_NOT_WHAT), replace=True)
    OmegaConf.register_new_resolver("part_name", lambda key, _root_: option_name(_root_[key]), replace=True)


register_resolvers()  # on import: any module that reads a run's config imports this package


_registered: Optional[tuple] = None  # the parts last stored: storing them again costs a tenth of a second


def register_configs() -> None:
    """Store the schemas so the YAML files can name them in their defaults lists (again only when
    the registered parts changed)."""
    global _registered
    register_resolvers()
    parts = tuple((registry.part, name, id(registry[name].schema)) for registry in PARTS for name in registry.names())
    if parts == _registered:
        return
    _registered = parts
    cs = ConfigStore.instance()
    cs.store(group="schema", name="train", node=TrainConfig)
    for (group, name), node in SCHEMAS.items():
        cs.store(group=f"schema/{group}", name=name, node=node)
    for registry in PARTS:
        for name in registry.names():
            cs.store(group=f"schema/{registry.part}", name=name, node=registry[name].schema)
            if registry[name].plugin and not (CONF_DIR / registry.part / f"{name}.yaml").is_file():  # no YAML needed
                node = OmegaConf.structured(registry[name].schema)
                node.name = name
                cs.store(group=registry.part, name=name, node=node)


def compose_train(*overrides: str) -> DictConfig:
    """The root config composed with `overrides` as `ganlab train` would see it (for scripts and tests)."""
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))
