"""One registry per swappable part: the names a config may pick, each with its builder, its schema
and its value checks; and a user's own part, named by its import path (`_target_: mynets.MyG`, with
its arguments beside it, as Hydra's instantiate has it).

The builders (`LOSSES.build(cfg.loss)`), the config store (a schema per name, which each YAML file
names in its defaults list) and `config.validate` all read these, so adding an option is one
registered class and one YAML file in conf/<part>/. The modules that define the options register
them when first imported; a registry imports them when it is first asked.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import sys
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


TARGET = "_target_"
PLUGIN_GROUP = "ganlab.parts"  # pyproject: [project.entry-points."ganlab.parts"] mine = "mypackage.ganlab_parts"
_plugins_loaded = False
_plugin_loading: Optional[str] = None  # the entry point being imported: what it registers is its


def load_plugins() -> None:
    """Import every installed plug-in's module (once): it registers its options like ganlab's own."""
    global _plugins_loaded, _plugin_loading
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            _plugin_loading = entry.name
            entry.load()
        except Exception as e:
            raise ConfigError(f"the ganlab plug-in {entry.name} ({entry.value}, from the package "
                              f"{entry.dist.name if entry.dist else '?'}) failed to load ({type(e).__name__}: {e}); "
                              f"reinstall or uninstall it") from None
        finally:
            _plugin_loading = None


def is_users_part(cfg) -> bool:
    """A user's part named by its import path, not a registered option."""
    return TARGET in cfg


def option_name(cfg) -> str:
    """A registered option's name, or a user's part's class (or function) name."""
    return str(cfg[TARGET]).rsplit(".", 1)[-1] if is_users_part(cfg) else cfg.name


def import_target(path: str, key: str) -> Callable:
    """The class or function at `path`; ConfigError in one line naming the module when it cannot be imported."""
    parts, first_error = str(path).split("."), None
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable module, then attributes (a.b.Class.Inner)
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError as e:
            first_error = first_error or e
            continue
        try:
            for name in parts[cut:]:
                found = getattr(found, name)
            return found
        except AttributeError as e:
            first_error = e
            break
    cause = first_error or ValueError("not a dotted path: module.Class")
    if parts[0] == "__main__":
        raise ConfigError(f"{key}._target_={path} was defined in a notebook or script (__main__), so only that session "
                          f"can build it; to use it here, move it into a module (mynets.py) and import it from there")
    raise ConfigError(f"{key}._target_={path} cannot be imported ({type(cause).__name__}: "
                      f"{str(cause).splitlines()[0][:160]}); ganlab imports it from the current folder and "
                      f"PYTHONPATH: run from the folder that holds {parts[0]}.py (or its package), add that folder "
                      f"to PYTHONPATH, or pip install the package")


# Libraries whose functions a config never names as a part: with the standard library's, they can run
# commands, load pickles or fetch code (os.system, torch.hub.load, numpy.load); a part is a class.
LIBRARIES = frozenset({"torch", "torchvision", "numpy", "scipy", "sklearn", "pandas", "PIL", "matplotlib", "hydra",
                       "omegaconf", "yaml", "joblib", "submitit", "IPython"})


def from_a_library(target: Any) -> bool:
    """Whether `target` is defined by Python itself (its standard library, a builtin) or by LIBRARIES."""
    top = str(getattr(target, "__module__", None) or "builtins").split(".")[0]
    return top in sys.stdlib_module_names or top in LIBRARIES or inspect.isbuiltin(target)


def described(target: Any) -> str:
    """What an imported `_target_` is, in words: `the function os.system`, `the class mynets.MyG`, `an int`."""
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
    if inspect.isclass(target):
        return f"the class {name}"
    if callable(target):
        return f"the {'builtin ' if inspect.isbuiltin(target) else ''}function {name}"
    return f"a {type(target).__name__}"


@dataclass(frozen=True)
class TargetRule:
    """What a user's `_target_` for a part must be (`accepts`), in words; checked before it is called."""
    words: str  # e.g. "a torch.nn.Module subclass"
    accepts: Callable[[Any], bool]


@dataclass(frozen=True)
class Option:
    build: Callable  # build(cfg, ...) -> the part
    schema: type  # the dataclass its YAML file names
    check: Optional[Callable] = None  # check(cfg, prefix) raises ConfigError for values this option refuses
    plugin: Optional[str] = None  # the installed plug-in that registered it (its options need no YAML file)


class Registry:
    def __init__(self, part: str, *modules: str):
        self.part, self.modules = part, modules  # the config group, and the modules or packages defining its options
        self._options: dict[str, Option] = {}
        self._loaded = False
        # Set by the part's module: ganlab's own keys for any option of the part (e.g. loss.r1_gamma) with
        # their defaults, never passed to a user's part; and how a user's part is built, custom(target,
        # arguments, cfg, *build arguments), where plain target(**arguments) is not enough.
        self.settings: dict[str, Any] = {}
        self.custom: Optional[Callable] = None
        # What a user's `_target_` must be (set by the part's module); None: the part takes no `_target_`.
        self.target_rule: Optional[TargetRule] = None

    def register(self, name: str, schema: type, check: Optional[Callable] = None) -> Callable:
        """Decorator: `@LOSSES.register("hinge", LossConfig)` on a class or function taking the config node."""
        def add(build: Callable) -> Callable:
            self._options[name] = Option(build, schema, check, _plugin_loading)
            return build
        return add

    def _load(self) -> dict[str, Option]:
        if not self._loaded:  # once: the package's folder is not read again on every lookup
            self._loaded = True
            load_plugins()
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
        """The part that `cfg` (its config node) names: a registered option, or a user's `_target_`."""
        if not is_users_part(cfg):
            return self[cfg.name].build(cfg, *args, **kwargs)
        target = self.target(cfg)
        try:
            if self.custom:
                return self.custom(target, self.arguments(cfg), cfg, *args, **kwargs)
            return target(**self.arguments(cfg))
        except ConfigError:
            raise
        except Exception as e:  # the user's own code failed: one line, and the run that it stopped leaves no folder
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else "no message"
            raise ConfigError(f"{self.part}._target_={cfg[TARGET]} failed while it was built ({type(e).__name__}: "
                              f"{reason})") from None

    def target(self, cfg) -> Callable:
        """A user's part's class (or function), imported and checked against the part's rule before
        anything calls it: a config or a run folder from elsewhere names code, and only a part is built."""
        self._load()
        path = cfg[TARGET]
        rule = self.target_rule
        if rule is None:
            raise ConfigError(f"{self.part}._target_={path}: {self.part} takes no part of your own; choose one of: "
                              f"{', '.join(self.names())}")
        target = import_target(path, self.part)
        if not rule.accepts(target):
            raise ConfigError(f"{self.part}._target_={path} is {described(target)}, not {rule.words}; refused before "
                              f"calling it (a config or a run folder names code that ganlab would run)")
        return target

    def arguments(self, cfg) -> dict[str, Any]:
        """A user's part's own arguments: its node less `_target_`, `name` and ganlab's own settings."""
        from omegaconf import OmegaConf

        self._load()
        node = OmegaConf.to_container(cfg, resolve=True)
        return {k: v for k, v in node.items() if k not in (TARGET, "name", *self.settings)}

    def setting(self, cfg, key: str) -> Any:
        """One of ganlab's own keys of this part, at its default where a user's part leaves it out."""
        self._load()
        return cfg[key] if key in cfg else self.settings[key]

    def builder(self, cfg) -> Any:
        """What builds the part (a registered class, or a user's target): where its class attributes live."""
        return self.target(cfg) if is_users_part(cfg) else self[cfg.name].build

    def validate(self, cfg) -> None:
        """`cfg.name` is a registered option and its values pass the option's checks; or a user's target
        can be imported and takes the arguments given."""
        if is_users_part(cfg):
            target = self.target(cfg)
            try:
                inspect.signature(target).bind_partial(**self.arguments(cfg))
            except TypeError as e:
                raise ConfigError(f"{self.part}._target_={cfg[TARGET]} does not take these arguments ({e}); it takes "
                                  f"{inspect.signature(target)}") from None
            except ValueError:  # a builtin without a signature: its call will say
                pass
            return
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
