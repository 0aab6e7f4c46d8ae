"""Config schemas (structure, types and every default) and the check of a composed config.

The dataclasses are stored in Hydra's ConfigStore under schema/, one per registered option
(registry.py), and named in each YAML file's defaults list (`- /schema/loss@_here_: wgan_gp`), so a
misspelled key or a wrong type fails at composition. `validate` then checks values and combinations
before anything is built, raising ConfigError with one line naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from ganlab.registry import DATASETS, PARTS, ConfigError, check, check_choice, check_positive, check_range

__all__ = ["ConfigError", "validate", "register_configs"]  # ConfigError lives in registry.py


# ---------------------------------------------------------------------------------- data
@dataclass
class ImageDataConfig:
    name: str = MISSING  # digits | mnist | fashion_mnist | cifar10 | folder
    root: Optional[str] = None  # folder holding the dataset's files (digits: unused, bundled)
    image_size: int = 32  # pixels per side: 8, 16, 28, 32 or 64
    channels: int = 1  # 1 (grey) or 3 (RGB)
    split: str = "train"  # train | test
    limit: Optional[int] = None  # keep only the first N images (null: all)
    download: bool = False  # torchvision download when files are missing (needs internet)


@dataclass
class RingDataConfig:
    name: str = "ring8"
    n_samples: int = 20000  # points drawn once and kept in memory
    n_modes: int = 8  # Gaussians evenly spaced on the circle
    radius: float = 1.0
    std: float = 0.02


@dataclass
class GridDataConfig:
    name: str = "grid25"
    n_samples: int = 20000
    grid_size: int = 5  # grid_size x grid_size modes
    spacing: float = 2.0  # distance between neighbouring modes, grid centred on 0
    std: float = 0.05


@dataclass
class Gauss1dDataConfig:
    name: str = "gauss1d"
    n_samples: int = 20000
    means: list[float] = field(default_factory=lambda: [-2.0, 2.0])
    std: float = 0.25


# -------------------------------------------------------------------------------- networks
@dataclass
class NetConfig:
    name: str = MISSING  # mlp | dcgan | resnet
    width: int = 64  # mlp: hidden units; dcgan, resnet: channels at full resolution (doubling below)
    depth: int = 1  # mlp: hidden layers; dcgan: conv blocks per inner resolution; resnet: residual blocks per resolution
    activation: str = "relu"  # relu | leaky_relu | gelu | elu | silu | tanh
    norm: str = "batch"  # batch | layer | spectral | none
    dropout: float = 0.0  # after each hidden block, in [0, 1)


@dataclass
class GeneratorNetConfig(NetConfig):
    z_dim: int = 64  # noise dimensions
    # how G takes the class in a conditional GAN (discriminator.conditioning != none): concat (a
    # learned class embedding joined to z) | cbn (conditional batch norm: per-class gain and bias)
    conditioning: str = "concat"


@dataclass
class DiscriminatorNetConfig(NetConfig):
    # none | projection (Miyato & Koyama 2018) | acgan (an auxiliary classifier, Odena et al. 2017);
    # anything but none makes the GAN class-conditional, with labels from the dataset
    conditioning: str = "none"
    class_weight: float = 1.0  # acgan: weight of the class loss in D's and G's losses


@dataclass
class MLPGeneratorConfig(GeneratorNetConfig):
    name: str = "mlp"
    width: int = 128
    depth: int = 3
    norm: str = "none"
    z_dim: int = 16


@dataclass
class DCGANGeneratorConfig(GeneratorNetConfig):
    name: str = "dcgan"
    depth: int = 2
    kernel_size: int = 4


@dataclass
class ResNetGeneratorConfig(GeneratorNetConfig):
    name: str = "resnet"
    z_dim: int = 128


@dataclass
class MLPDiscriminatorConfig(DiscriminatorNetConfig):
    name: str = "mlp"
    width: int = 128
    depth: int = 3
    activation: str = "leaky_relu"
    norm: str = "none"


@dataclass
class DCGANDiscriminatorConfig(DiscriminatorNetConfig):
    name: str = "dcgan"
    activation: str = "leaky_relu"
    depth: int = 2
    kernel_size: int = 4


@dataclass
class ResNetDiscriminatorConfig(DiscriminatorNetConfig):
    name: str = "resnet"
    norm: str = "spectral"


# ---------------------------------------------------------------------------------- loss
@dataclass
class LossConfig:
    name: str = MISSING  # bce | bce_logits | label_smoothing | wgan_gp | hinge | lsgan | minimax
    n_critic: int = 1  # recommended D steps per G step (trainer.n_critic defaults to it)
    r1_gamma: float = 0.0  # R1 penalty on real data, (gamma / 2) E||grad D(x)||^2 (0: off; StyleGAN2 uses 1-10)
    r2_gamma: float = 0.0  # the same on generated data (0: off)
    reg_every: int = 16  # apply R1 / R2 every this many D steps, scaled by it (lazy regularisation)


@dataclass
class LabelSmoothingLossConfig(LossConfig):
    name: str = "label_smoothing"
    real_target: float = 0.9  # D's target for real images, in [0, 1]
    fake_target: float = 0.0  # D's target for generated images, in [0, 1]


@dataclass
class WGANGPLossConfig(LossConfig):
    name: str = "wgan_gp"
    n_critic: int = 5
    gp_weight: float = 10.0  # lambda of the gradient penalty


# ---------------------------------------------------------------------------------- optim
@dataclass
class OptimConfig:
    name: str = MISSING  # adam | rmsprop
    lr: float = 2e-4  # base learning rate
    d_lr_mult: float = 1.0  # D lr = lr * d_lr_mult
    g_lr_mult: float = 1.0  # G lr = lr * g_lr_mult
    weight_decay: float = 0.0


@dataclass
class AdamConfig(OptimConfig):
    name: str = "adam"
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # DCGAN's; WGAN-GP uses [0.0, 0.9]


@dataclass
class RMSpropConfig(OptimConfig):
    name: str = "rmsprop"
    lr: float = 5e-5
    alpha: float = 0.99  # smoothing constant of the squared-gradient average


# ------------------------------------------------------------------------------- augment
@dataclass
class AugmentConfig:
    name: str = "none"  # none | diffaug (images only)
    policy: list[str] = field(default_factory=lambda: ["color", "translation", "cutout"])  # any of these, e.g. [color]
    p: float = 1.0  # probability of each transform per image (adaptive: where p starts; ADA starts at 0)
    adaptive: bool = False  # ADA: tune p towards r_t = E[sign(D(real))] = target
    target: float = 0.6  # ADA's r_t target
    ada_interval: int = 4  # D steps between adjustments of p
    ada_kimg: float = 20.0  # thousands of real images for p to move from 0 to 1 (StyleGAN2-ADA: 500 for long runs)


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
    precision: str = "32"  # 32 | bf16 (autocast) | fp16 (autocast and a gradient scaler; CUDA only) | auto (bf16 on a CPU that has bf16 instructions, else 32)
    channels_last: bool = False  # NHWC memory layout for images
    compile: bool = False  # torch.compile G and D (compiling takes a while first)
    cudnn_benchmark: bool = False  # let cuDNN pick the fastest convolution algorithms (CUDA)


@dataclass
class MetricsConfig:
    every: int = 5  # epochs between quality evaluations (and one at the end)
    n_samples: int = 2000  # generated samples per evaluation (and real ones in the reference)
    nearest_k: int = 5  # k of precision / recall / density / coverage
    classifier_steps: int = 1500  # training steps of the per-dataset feature classifier
    cache_dir: str = "~/.cache/ganlab/classifiers"  # where trained classifiers and floors are kept
    enabled: bool = True  # false: no quality scores, no best.pt


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


def register_configs() -> None:
    """Store the schemas so the YAML files can name them in their defaults lists."""
    OmegaConf.register_new_resolver("path_safe", path_safe, replace=True)
    cs = ConfigStore.instance()
    cs.store(group="schema", name="train", node=TrainConfig)
    for (group, name), node in SCHEMAS.items():
        cs.store(group=f"schema/{group}", name=name, node=node)
    for registry in PARTS:
        for name in registry.names():
            cs.store(group=f"schema/{registry.part}", name=name, node=registry[name].schema)


def compose_train(*overrides: str) -> DictConfig:
    """The root config composed with `overrides` as `ganlab train` would see it (for scripts and tests)."""
    from hydra import compose, initialize_config_dir

    from ganlab import CONF_DIR

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


# ------------------------------------------------------------------------------ validation
DEVICES = ("auto", "cpu", "cuda")
CONDITIONING_G = ("concat", "cbn")
CONDITIONING_D = ("none", "projection", "acgan")


def holds_images(data: DictConfig) -> bool:
    return DATASETS[data.name].schema is ImageDataConfig


def is_conditional(cfg: DictConfig) -> bool:
    """A class-conditional GAN: D conditions on the class (and so G takes one)."""
    return cfg.discriminator.get("conditioning", "none") != "none"


def _unknown_keys(node: DictConfig, prefix: str = "") -> None:
    """Keys added with `+key=value` that no schema knows are refused (they would be stored and ignored)."""
    schema = OmegaConf.get_type(node)
    known = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in node:
        if known is not None and key not in known:
            raise ConfigError(f"+{prefix}{key} is not a setting ganlab knows, so it would be ignored; the keys of "
                              f"{prefix.rstrip('.') or 'the root config'} are: {', '.join(sorted(known))}")
        value = node._get_node(key)
        if isinstance(value, DictConfig):
            _unknown_keys(value, f"{prefix}{key}.")


def validate(cfg: DictConfig) -> None:
    """Check values and combinations of a composed config; raise ConfigError naming the key."""
    _unknown_keys(cfg)
    for registry in PARTS:  # each part's name, then that option's own checks
        registry.validate(cfg[registry.part])
    for side in ("generator", "discriminator"):
        _validate_net(side, cfg[side])
    images = holds_images(cfg.data)
    convs = [side for side in ("generator", "discriminator") if cfg[side].name != "mlp"]
    check(images or not convs,
          f"data={cfg.data.name} holds {'1-D' if cfg.data.name == 'gauss1d' else '2-D'} points, not images, "
          f"so {cfg[convs[0]].name if convs else ''} cannot model it; add {' '.join(side + '=mlp' for side in convs)}")
    _validate_conditioning(cfg, images)
    check(images or cfg.augment.name == "none",
          f"augment={cfg.augment.name} transforms images, but data={cfg.data.name} holds points; use augment=none")
    _validate_loss(cfg.loss, cfg.discriminator)
    check(not (cfg.loss.name == "wgan_gp" and cfg.trainer.precision == "fp16"),
          "loss=wgan_gp with trainer.precision=fp16: the gradient penalty would need its own loss scaling; "
          "use trainer.precision=bf16 (or 32)")
    _validate_optim(cfg.optim)
    _validate_trainer(cfg.trainer)
    _validate_metrics(cfg.metrics)
    check_choice("logger.name", cfg.logger.name, ("csv", "tensorboard", "mlflow"))


def _validate_conditioning(cfg: DictConfig, images: bool) -> None:
    g, d = cfg.generator, cfg.discriminator
    check_choice("generator.conditioning", g.conditioning, CONDITIONING_G)
    check_choice("discriminator.conditioning", d.conditioning, CONDITIONING_D)
    check(d.class_weight >= 0, f"discriminator.class_weight={d.class_weight} must be >= 0")
    if not is_conditional(cfg):
        return
    check(images, f"discriminator.conditioning={d.conditioning} needs classes, but data={cfg.data.name} holds points "
                  f"without labels; use a labelled image dataset (digits, mnist, fashion_mnist, cifar10, or a "
                  f"folder with a subfolder per class) or discriminator.conditioning=none")
    check(g.conditioning != "cbn" or g.norm in ("batch", "layer"),
          f"generator.conditioning=cbn conditions G's norm layers, but generator.norm={g.norm} has none; "
          f"use generator.norm=batch (or layer), or generator.conditioning=concat")


def _validate_net(side: str, net: DictConfig) -> None:
    """What every network shares; an option's own keys are checked by its registered check."""
    from ganlab.models.layers import ACTIVATIONS, NORMS

    check_choice(f"{side}.activation", net.activation, tuple(ACTIVATIONS))
    check_choice(f"{side}.norm", net.norm, NORMS)
    check_range(f"{side}.dropout", net.dropout, 0.0, 1.0, high_open=True)
    check(net.width >= 1, f"{side}.width={net.width} must be >= 1")
    check(net.depth >= 0, f"{side}.depth={net.depth} must be >= 0")
    if "z_dim" in net:
        check(net.z_dim >= 1, f"{side}.z_dim={net.z_dim} must be >= 1")


def _validate_loss(loss: DictConfig, discriminator: DictConfig) -> None:
    check(loss.n_critic >= 1, f"loss.n_critic={loss.n_critic} must be >= 1")
    for key in ("r1_gamma", "r2_gamma"):
        check(loss[key] >= 0, f"loss.{key}={loss[key]} must be >= 0 (0: off)")
    check(loss.reg_every >= 1, f"loss.reg_every={loss.reg_every} must be >= 1")
    if loss.name == "wgan_gp":
        check(loss.r1_gamma == 0 and loss.r2_gamma == 0,
              "loss=wgan_gp with loss.r1_gamma/r2_gamma: WGAN-GP has its own gradient penalty (loss.gp_weight); "
              "use R1/R2 with bce_logits, hinge, lsgan or label_smoothing")
        check(discriminator.norm != "batch",
              "loss=wgan_gp with discriminator.norm=batch: batch norm mixes samples, which breaks the "
              "per-sample gradient penalty; use discriminator.norm=layer (or none, spectral)")


def _validate_optim(optim: DictConfig) -> None:
    check_positive("optim.lr", optim.lr)
    check_positive("optim.d_lr_mult", optim.d_lr_mult)
    check_positive("optim.g_lr_mult", optim.g_lr_mult)
    check(optim.weight_decay >= 0, f"optim.weight_decay={optim.weight_decay} must be >= 0")


def _validate_trainer(trainer: DictConfig) -> None:
    check(trainer.epochs >= 1, f"trainer.epochs={trainer.epochs} must be >= 1")
    check(trainer.steps is None or trainer.steps >= 1, f"trainer.steps={trainer.steps} must be >= 1 (or null)")
    check(trainer.batch_size >= 1, f"trainer.batch_size={trainer.batch_size} must be >= 1")
    check(trainer.n_critic >= 1, f"trainer.n_critic={trainer.n_critic} must be >= 1")
    check_choice("trainer.device", trainer.device, DEVICES)
    for key in ("log_every", "sample_every", "checkpoint_every", "n_grid"):
        check(trainer[key] >= 1, f"trainer.{key}={trainer[key]} must be >= 1")
    check_positive("trainer.checkpoint_minutes", trainer.checkpoint_minutes)
    check_range("trainer.ema_decay", trainer.ema_decay, 0.0, 1.0, high_open=True)
    check(trainer.ema_start >= 0, f"trainer.ema_start={trainer.ema_start} must be >= 0")
    check(trainer.threads is None or trainer.threads >= 1, f"trainer.threads={trainer.threads} must be >= 1 (or null)")
    check_choice("trainer.precision", trainer.precision, ("32", "bf16", "fp16", "auto"))


def _validate_metrics(metrics: DictConfig) -> None:
    for key in ("every", "classifier_steps", "nearest_k"):
        check(metrics[key] >= 1, f"metrics.{key}={metrics[key]} must be >= 1")
    check(metrics.n_samples >= 2 * metrics.nearest_k + 2,
          f"metrics.n_samples={metrics.n_samples} is too few; use at least {2 * metrics.nearest_k + 2} (default 2000)")
