"""One registry per swappable part: the names a config may pick, each with its builder, its schema
and its value checks.

The builders (`LOSSES.build(cfg.loss)`), the config store (a schema per name, which each YAML file
names in its defaults list) and `config.validate` all read these, so adding an option is one
registered class and one YAML file in conf/<part>/. The modules that define the options register
them when first imported; a registry imports them when it is first asked.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Optional


class ConfigError(ValueError):
    """A config value or combination that cannot be trained; the message says how to fix it."""


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_choice(key: str, value: Any, choices) -> None:
    check(value in choices, f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


def check_range(key: str, value: float, low: float, high: float, *, high_open: bool = False,
                low_open: bool = False) -> None:
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    lb, hb = "(" if low_open else "[", ")" if high_open else "]"
    check(math.isfinite(value) and above and below, f"{key}={value} is out of range; it must be in {lb}{low}, {high}{hb}")


def check_positive(key: str, value: float) -> None:
    check(math.isfinite(value) and value > 0, f"{key}={value} must be > 0")


@dataclass(frozen=True)
class Option:
    build: Callable  # build(cfg, ...) -> the part
    schema: type  # the dataclass its YAML file names
    check: Optional[Callable] = None  # check(cfg, prefix) raises ConfigError for values this option refuses


class Registry:
    def __init__(self, part: str, *modules: str):
        self.part, self.modules = part, modules  # the config group, and the modules or packages defining its options
        self._options: dict[str, Option] = {}

    def register(self, name: str, schema: type, check: Optional[Callable] = None) -> Callable:
        """Decorator: `@LOSSES.register("hinge", LossConfig)` on a class or function taking the config node."""
        def add(build: Callable) -> Callable:
            self._options[name] = Option(build, schema, check)
            return build
        return add

    def _load(self) -> dict[str, Option]:
        for name in self.modules:
            module = importlib.import_module(name)
            for sub in pkgutil.iter_modules(getattr(module, "__path__", [])):  # a package: each of its modules
                importlib.import_module(f"{name}.{sub.name}")
        return self._options

    def names(self) -> tuple[str, ...]:
        return tuple(self._load())

    def __getitem__(self, name: str) -> Option:
        return self._load()[name]

    def build(self, cfg, *args, **kwargs):
        """The part that `cfg` (its config node) names."""
        return self[cfg.name].build(cfg, *args, **kwargs)

    def validate(self, cfg) -> None:
        """`cfg.name` is a registered option and its values pass the option's checks."""
        check_choice(f"{self.part}.name", cfg.name, self.names())
        option = self[cfg.name]
        if option.check:
            option.check(cfg, self.part)


# Each registry imports its modules (every module of a package) when first asked, and they register
# their options: adding one is a class or function with its schema in a module there, and a YAML file.
DATASETS = Registry("data", "ganlab.parts.data")
GENERATORS = Registry("generator", "ganlab.parts.networks")
DISCRIMINATORS = Registry("discriminator", "ganlab.parts.networks")
LOSSES = Registry("loss", "ganlab.parts.losses")
OPTIMIZERS = Registry("optim", "ganlab.parts.optimisers")
AUGMENTATIONS = Registry("augment", "ganlab.parts.augment")
PARTS = (DATASETS, GENERATORS, DISCRIMINATORS, LOSSES, OPTIMIZERS, AUGMENTATIONS)
