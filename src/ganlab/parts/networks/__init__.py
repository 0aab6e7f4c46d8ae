"""Generators and discriminators. Each module registers its networks under the names a config picks
(`generator=dcgan`), built from their config node and the sample shape; D returns one raw score per
sample. conditional.py wraps any of them for a class-conditional GAN."""

from __future__ import annotations

import inspect

import torch.nn as nn

from ganlab.parts.networks.layers import DiscriminatorNetConfig
from ganlab.parts.registry import DISCRIMINATORS, GENERATORS, ConfigError, TargetRule


def user_network(target, args: dict, cfg, shape: tuple[int, ...]) -> nn.Module:
    """A user's network (`generator._target_: mynets.MyG`): its own arguments, and the data's sample
    shape too when its signature asks for `sample_shape`."""
    if "sample_shape" in inspect.signature(target).parameters and "sample_shape" not in args:
        args = {**args, "sample_shape": tuple(shape)}
    net = target(**args)
    if not isinstance(net, nn.Module):
        raise ConfigError(f"{cfg._target_} returned a {type(net).__name__}, not a torch.nn.Module")
    return net


GENERATORS.custom = DISCRIMINATORS.custom = user_network
GENERATORS.target_rule = DISCRIMINATORS.target_rule = TargetRule(
    "a torch.nn.Module subclass", lambda target: inspect.isclass(target) and issubclass(target, nn.Module))
# ganlab's own keys of any D (a user's `discriminator._target_` included): packing wraps any network
# (packing.py); minibatch_std is a layer inside ganlab's networks (layers.py).
DISCRIMINATORS.settings = {key: DiscriminatorNetConfig.__dataclass_fields__[key].default for key in ("pack", "minibatch_std")}
