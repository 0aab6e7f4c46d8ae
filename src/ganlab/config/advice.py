"""Messages that lead to the fix, for overrides Hydra would refuse with its own words: a key that no
option has ("lr=1e-4": did you mean optim.lr?), and a key of another option than the one chosen
("loss=bce_logits,label_smoothing loss.real_target=0.8": real_target belongs to loss=label_smoothing).
Only keys that Hydra refuses for certain are judged; anything else is left to Hydra."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Optional

from ganlab.parts.registry import PARTS


def _fields(schema: type, prefix: str) -> set[str]:
    """Every dotted key of a dataclass schema, nested ones included."""
    keys = set()
    for f in dataclasses.fields(schema):
        keys.add(f"{prefix}{f.name}")
        if dataclasses.is_dataclass(f.default_factory):  # a nested schema (trainer, metrics, ...)
            keys |= _fields(f.default_factory, f"{prefix}{f.name}.")
    return keys


def known_keys() -> dict[str, set[str]]:
    """Every key a config may hold -> the options that have it ({""}: whatever is chosen)."""
    from ganlab.config.schema import LOGGERS, TrainConfig

    keys: dict[str, set[str]] = {k: {""} for k in _fields(TrainConfig, "")}
    for part in PARTS:
        for name in part.names():
            for key in _fields(part[name].schema, f"{part.part}."):
                keys.setdefault(key, set()).add(name)
    for name, schema in LOGGERS.items():
        for key in _fields(schema, "logger."):
            keys.setdefault(key, set()).add(name)
    everywhere = {part.part: set(part.names()) for part in PARTS} | {"logger": set(LOGGERS)}
    for key, owners in keys.items():  # a key every option of its group has: whatever is chosen
        group = key.split(".")[0]
        if group in everywhere and owners >= everywhere[group]:
            keys[key] = {""}
    return keys


def advice(overrides: list[str], check_keys: bool = True) -> Optional[str]:
    """One line naming the fix for the first override Hydra would refuse, or None. `check_keys`: judge
    keys too (not with a user's --config-dir, whose groups ganlab does not know)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in overrides:
        key, _, value = override.partition("=")
        if not value.isascii() and value[:1] not in "'\"":
            return (f"{override}: Hydra reads characters beyond ASCII only inside quotes; write {key}='{value}' "
                    f"(quoted for your shell too: \"{key}='{value}'\")")
    try:
        parsed = OverridesParser.create().parse_overrides([o for o in overrides if not o.startswith("hydra")])
    except Exception:  # a malformed override: Hydra's own message says where
        return None
    groups = {part.part for part in PARTS} | {"logger", "trainer", "metrics", "exp", "preset"}
    for o in parsed:
        number = next((v for v in _raw_values(o) if isinstance(v, (int, float))), None) if o.key_or_group in groups \
            else None
        if number is not None and not o.is_delete():  # (a bool is an int too; null deselects a group, as in Hydra)
            return (f"{o.input_line}: Hydra reads {number} as a value, not a name, but {o.key_or_group} takes an "
                    f"option's name: choose one of its options (ganlab train --help lists them), or quote a name "
                    f"that looks like a value ({o.key_or_group}='{number}')")
    if not check_keys:
        return None

    keys = known_keys()
    chosen = {o.key_or_group: _values(o) for o in parsed if o.key_or_group in groups and not o.is_delete()}
    top = {k for k in keys if "." not in k}
    for o in parsed:
        key = o.key_or_group
        if o.is_add() or o.is_delete() or key in groups or "/" in key:
            continue  # keys being added, and group choices, are Hydra's to judge
        if "." in key and key.split(".")[0] not in top:
            continue  # a group ganlab does not know (a --config-dir's own)
        if key not in keys:
            leaf = key.split(".")[-1]
            near = sorted(k for k in keys if k.endswith(f".{leaf}")) or difflib.get_close_matches(key, list(keys), 3, 0.75)
            return (f"{key}: no such setting" + (f"; did you mean {' or '.join(near)}?" if near else "")
                    + " (ganlab train --help lists every setting)")
        group, owners = key.split(".")[0], keys[key]
        others = [c for c in chosen.get(group, []) if "" not in owners and c not in owners]
        if others:
            return (f"{key} belongs to {' and '.join(f'{group}={o}' for o in sorted(owners))}, not {group}="
                    f"{', '.join(others)}: sweep it in a separate run of {group}={sorted(owners)[0]}")
    return None


def _raw_values(override) -> list:
    """The values an override gives, as Hydra reads them ([] for a glob or an interval, which name no option)."""
    try:
        return list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
    except Exception:
        return []


def _values(override) -> list[str]:
    """The options a group override chooses ([] for a glob(...), which only Hydra's loader can expand)."""
    try:
        return list(override.sweep_string_iterator()) if override.is_sweep_override() else [str(override.value())]
    except Exception:
        return []
