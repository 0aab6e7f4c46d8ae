"""The check of a composed config: every value and combination, before anything is built.

Each part's option checks its own keys (registered beside its builder); here the keys every run
has, and the combinations across parts. Raises ConfigError with one line naming the key.
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig, OmegaConf

from ganlab.config.schema import LOGGERS
from ganlab.parts.data import data_schema
from ganlab.parts.registry import (
    DISCRIMINATORS,
    GENERATORS,
    LOSSES,
    OPTIMIZERS,
    PARTS,
    ConfigError,
    check,
    check_choice,
    check_positive,
    check_range,
    is_users_part,
    option_name,
)

DEVICES = ("auto", "cpu", "cuda")
CONDITIONING_G = ("concat", "cbn")
CONDITIONING_D = ("none", "projection", "acgan")


def holds_images(data: DictConfig) -> bool:
    return data_schema(data).holds_images


def fits_points(registry, name: str) -> bool:
    """Whether the network option `name` models points (1-D/2-D data), as its class says."""
    return registry[name].build.fits_points


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
    """Check values and combinations of a composed config; raise ConfigError naming the key. A user's
    part (`_target_`) is checked for its import and arguments here, and on a dry batch before training."""
    _unknown_keys(cfg)
    for registry in PARTS:  # each part's name, then that option's own checks
        registry.validate(cfg[registry.part])
    for side in ("generator", "discriminator"):
        if not is_users_part(cfg[side]):
            _validate_net(side, cfg[side])
    images = None if is_users_part(cfg.data) else holds_images(cfg.data)  # a user's data: known once loaded
    if images is False:
        _validate_points(cfg)
    _validate_conditioning(cfg, images is not False)
    _validate_remedies(cfg)
    _validate_loss(cfg)
    _validate_optim(cfg.optim)
    _validate_trainer(cfg.trainer)
    _validate_metrics(cfg.metrics)
    check_choice("logger.name", cfg.logger.name, tuple(LOGGERS))


def _validate_conditioning(cfg: DictConfig, images: bool) -> None:
    g, d = cfg.generator, cfg.discriminator
    if not is_users_part(g):
        check_choice("generator.conditioning", g.conditioning, CONDITIONING_G)
    if not is_users_part(d):
        check_choice("discriminator.conditioning", d.conditioning, CONDITIONING_D)
        check(d.class_weight >= 0, f"discriminator.class_weight={d.class_weight} must be >= 0")
    if not is_conditional(cfg):
        return
    check(not is_users_part(g), f"discriminator.conditioning={d.conditioning} wraps ganlab's networks in a class-conditional "
                            f"GAN; generator._target_={g.get('_target_')} is your own: give it ganlab's generator, or "
                            f"use discriminator.conditioning=none")
    check(images, f"discriminator.conditioning={d.conditioning} needs classes, but data={cfg.data.name} holds points "
                  f"without labels; use a labelled image dataset (digits, mnist, fashion_mnist, cifar10, or a "
                  f"folder with a subfolder per class) or discriminator.conditioning=none")
    check(g.conditioning != "cbn" or g.norm in ("batch", "layer"),
          f"generator.conditioning=cbn conditions G's norm layers, but generator.norm={g.norm} has none; "
          f"use generator.norm=batch (or layer), or generator.conditioning=concat")


def _validate_remedies(cfg: DictConfig) -> None:
    """Packing and the minibatch std layer (parts/networks/packing.py, layers.py)."""
    d, setting = cfg.discriminator, lambda key: DISCRIMINATORS.setting(cfg.discriminator, key)
    pack = setting("pack")
    check(pack >= 1, f"discriminator.pack={pack} must be >= 1 (1: no packing)")
    check(cfg.trainer.batch_size % pack == 0, f"discriminator.pack={pack} must divide trainer.batch_size="
                                              f"{cfg.trainer.batch_size}: D judges the batch in packs of {pack}")
    check(pack == 1 or not is_conditional(cfg), f"discriminator.pack={pack} with discriminator.conditioning="
                                                f"{d.get('conditioning')}: a pack holds samples of several classes; use one")
    check(not (setting("minibatch_std") and is_users_part(d)),
          f"discriminator.minibatch_std=true is a layer inside ganlab's networks; discriminator._target_="
          f"{d.get('_target_')} is your own: add ganlab.parts.networks.layers.MinibatchStd before its head instead")


def _validate_net(side: str, net: DictConfig) -> None:
    """What every network shares; an option's own keys are checked by its registered check."""
    from ganlab.parts.networks.layers import ACTIVATIONS, NORMS

    check_choice(f"{side}.activation", net.activation, tuple(ACTIVATIONS))
    check_choice(f"{side}.norm", net.norm, NORMS)
    check_range(f"{side}.dropout", net.dropout, 0.0, 1.0, high_open=True)
    check(net.width >= 1, f"{side}.width={net.width} must be >= 1")
    check(net.depth >= 0, f"{side}.depth={net.depth} must be >= 0")
    if "z_dim" in net:
        check(net.z_dim >= 1, f"{side}.z_dim={net.z_dim} must be >= 1")


def _validate_points(cfg: DictConfig) -> None:
    """Data of points (1-D/2-D): networks that model points, no image augmentation."""
    nets = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}
    wrong = [side for side, registry in nets.items()
             if not is_users_part(cfg[side]) and not fits_points(registry, cfg[side].name)]
    fixes = [f"{side}={next(n for n in nets[side].names() if fits_points(nets[side], n))}" for side in wrong]
    (dims,) = data_schema(cfg.data).sample_shape(cfg.data)
    check(not wrong, f"data={cfg.data.name} holds {dims}-D points, not images, so {cfg[wrong[0]].name if wrong else ''} "
                     f"cannot model it; add {' '.join(fixes)}")
    check(cfg.augment.name == "none",
          f"augment={cfg.augment.name} transforms images, but data={cfg.data.name} holds points; use augment=none")


def _validate_loss(cfg: DictConfig) -> None:
    loss, setting, name = cfg.loss, lambda key: LOSSES.setting(cfg.loss, key), option_name(cfg.loss)
    check(setting("n_critic") >= 1, f"loss.n_critic={setting('n_critic')} must be >= 1")
    for key in ("r1_gamma", "r2_gamma"):
        check(setting(key) >= 0, f"loss.{key}={setting(key)} must be >= 0 (0: off)")
    check(setting("reg_every") >= 1, f"loss.reg_every={setting('reg_every')} must be >= 1")
    if getattr(LOSSES.builder(loss), "gradient_penalty", False):
        with_penalty = [n for n in LOSSES.names() if not LOSSES[n].build.gradient_penalty]
        check(setting("r1_gamma") == 0 and setting("r2_gamma") == 0,
              f"loss={name} with loss.r1_gamma/r2_gamma: {name} has its own gradient penalty; "
              f"use R1/R2 with {', '.join(with_penalty)}")
        check(cfg.discriminator.get("norm") != "batch",
              f"loss={name} with discriminator.norm=batch: batch norm mixes samples, which breaks the "
              "per-sample gradient penalty; use discriminator.norm=layer (or none, spectral)")
        check(cfg.trainer.precision != "fp16",
              f"loss={name} with trainer.precision=fp16: the gradient penalty would need its own loss scaling; "
              "use trainer.precision=bf16 (or 32)")


def _validate_optim(optim: DictConfig) -> None:
    for key in ("lr", "d_lr_mult", "g_lr_mult"):
        check_positive(f"optim.{key}", OPTIMIZERS.setting(optim, key))
    if not is_users_part(optim):
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
    check(str(trainer.stack) == "auto" or str(trainer.stack).isdigit() and int(trainer.stack) >= 1,
          f"trainer.stack={trainer.stack} must be a number >= 1 (1: each run its own process) or auto")
    check_choice("trainer.precision", trainer.precision, ("32", "bf16", "fp16", "auto"))


def _validate_metrics(metrics: DictConfig) -> None:
    for key in ("every", "classifier_steps", "nearest_k"):
        check(metrics[key] >= 1, f"metrics.{key}={metrics[key]} must be >= 1")
    check(metrics.n_samples >= 2 * metrics.nearest_k + 2,
          f"metrics.n_samples={metrics.n_samples} is too few; use at least {2 * metrics.nearest_k + 2} (default 2000)")
