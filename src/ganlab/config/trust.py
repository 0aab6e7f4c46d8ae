"""Config files are code: a YAML file can name any Python callable (`_target_`) and Hydra calls its
callbacks before a run starts, with the user's rights. ganlab runs only its own callbacks unless the
user opts in (GANLAB_ALLOW_CALLBACKS=1), and refuses a config that expands beyond any real one's
size (a YAML alias bomb: ten lines, a million leaves) or asks for Python objects (a !!python tag)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

MAX_NODES = 100_000  # no real config comes near: ganlab's composed config has a few hundred
ALLOW = "GANLAB_ALLOW_CALLBACKS"


class UntrustedConfig(ValueError):
    """A config that ganlab will not run as it is; the message names the file and the fix."""


def check_config_dir(folder: Optional[Path], overrides: list[str]) -> None:
    """Refuse a --config-dir file (or an override) that sets callbacks other than ganlab's, and a file
    whose aliases expand past MAX_NODES."""
    allowed = os.environ.get(ALLOW) == "1"
    for override in overrides:
        if "callbacks" in override.split("=")[0] and "_target_" in override and not allowed:
            raise UntrustedConfig(f"{override}: hydra callbacks other than ganlab's run code before the run; set "
                                  f"{ALLOW}=1 to allow them")
    for path in sorted(Path(folder).rglob("*.yaml")) if folder else []:
        try:
            node = yaml.compose(path.read_text(errors="replace"), Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            continue  # Hydra's own message says what is wrong with it
        python = next((n for n in _nodes(node, limit=10_000) if n.tag.startswith("tag:yaml.org,2002:python/")), None)
        if python is not None:
            raise UntrustedConfig(f"{path}, line {python.start_mark.line + 1}: the YAML tag !!{python.tag.split(':', 2)[2]} "
                                  f"asks for Python objects; ganlab configs hold plain values: remove it")
        size = sum(1 for _ in _nodes(node, limit=MAX_NODES + 1))
        if size > MAX_NODES:
            raise UntrustedConfig(f"{path}: its aliases expand to more than {MAX_NODES:,} values, far beyond any real "
                                  f"config (a YAML alias bomb?); nothing was run")
        foreign = [t for t in _callback_targets(node, path) if not t.startswith("ganlab.")]
        if foreign and not allowed:
            raise UntrustedConfig(f"{path}: sets hydra callbacks ({', '.join(foreign)}) that run code with your rights "
                                  f"before the run; ganlab runs only its own unless {ALLOW}=1 is set")


def _nodes(node: Any, limit: int) -> Iterator[Any]:
    """The nodes under `node` with every alias expanded, no more than `limit` of them."""
    stack, count = [node], 0
    while stack and count < limit:
        current = stack.pop()
        count += 1
        yield current
        if isinstance(current, yaml.MappingNode):
            stack.extend(v for pair in current.value for v in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _callback_targets(node: Any, path: Path) -> Iterator[str]:
    """The `_target_`s under a `hydra: callbacks:` node (or anywhere in a file of a hydra/callbacks group)."""
    in_callbacks = "callbacks" in path.parts

    def walk(current: Any, inside: bool) -> Iterator[str]:
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                name = getattr(key, "value", None)
                if inside and name == "_target_" and isinstance(value, yaml.ScalarNode):
                    yield str(value.value)
                yield from walk(value, inside or name == "callbacks")
        elif isinstance(current, yaml.SequenceNode):
            for item in current.value:
                yield from walk(item, inside)

    yield from walk(node, in_callbacks)
