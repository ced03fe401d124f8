"""Settings and their ranges: :class:`Limit` (the values a key accepts), :func:`config_field` (a dataclass field
with its default and its limit side by side), the checks of a dataclass (:func:`check_fields`) or of a loaded
``config.json`` (:func:`check_config`), and their one-line errors. Imports nothing heavy, so that the command
lines can read defaults and ranges without loading torch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "ConfigValueError",
    "Limit",
    "ModelFileError",
    "check_config",
    "check_fields",
    "config_field",
    "field_limits",
    "short_value",
]


class ModelFileError(Exception):
    """A model directory is missing, incomplete or corrupt (the message is one line naming the file)."""


# ---------------------------------------------------------------------------------------------- config values
@dataclass(frozen=True)
class Limit:
    """The values a config key accepts.

    ``kind`` is ``int``, ``float`` (ints accepted), ``bool``, ``str``, ``list`` (of strings; ``high`` caps its
    length) or ``dict`` (``high`` caps its number of entries). Numbers lie in ``[low, high]``, or ``[low, high)``
    with ``open_high``; strings are one of ``choices`` when given. An ``optional`` key may be absent or null.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    open_high: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False

    def describe(self) -> str:
        """What the key must be, in words (``an integer in [1, 100]``)."""
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return "one of " + ", ".join(self.choices) if self.choices else "a string"
        if self.kind is list:
            return f"a list of at most {self.high:,.0f} strings"
        if self.kind is dict:
            return f"an object of at most {self.high:,.0f} entries"
        name = "an integer" if self.kind is int else "a number"
        return f"{name} in [{_num(self.low)}, {_num(self.high)}{')' if self.open_high else ']'}"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is of this kind and in range."""
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is str:
            return isinstance(value, str) and (not self.choices or value in self.choices)
        if self.kind is list:
            return isinstance(value, list) and len(value) <= (self.high or 0) and all(isinstance(v, str) for v in value)
        if self.kind is dict:
            return isinstance(value, dict) and len(value) <= (self.high or 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and value < self.low:
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)


def _num(value: float | None) -> str:
    if value is None:
        return "inf"
    return str(int(value)) if float(value).is_integer() else str(value)


def config_field(default: Any, limit: Limit) -> Any:
    """A field of a config dataclass: its default, and in its metadata (``limit``) the values that a saved config
    may hold, declared beside it (:func:`field_limits` collects them)."""
    return field(default=default, metadata={"limit": limit})


def field_limits(cls: type, prefix: str = "") -> dict[str, Limit]:
    """Key (``prefix`` + field name, such as ``model.unn_iter``) -> limit, for each field of the config dataclass
    ``cls`` that declares one (:func:`config_field`): the table :func:`check_config` takes."""
    return {prefix + f.name: f.metadata["limit"] for f in fields(cls) if "limit" in f.metadata}


class ConfigValueError(ValueError):
    """A setting out of its range (``key`` must be ``limit``, not ``value``): one line, naming the key."""

    def __init__(self, key: str, limit: Limit, value: Any) -> None:
        super().__init__(f"{key} must be {limit.describe()}, not {short_value(value)}")
        self.key, self.limit, self.value = key, limit, value


def check_fields(instance: Any, prefix: str = "") -> None:
    """Check every field of a config dataclass ``instance`` that declares a limit (:func:`config_field`); errors
    name the field as ``prefix`` + its name (``model.unn_iter``).

    Raises:
        ConfigValueError: the first field out of range or of the wrong type.
    """
    for name, limit in field_limits(type(instance)).items():
        value = getattr(instance, name)
        if value is None and limit.optional:
            continue
        if not limit.accepts(value):
            raise ConfigValueError(prefix + name, limit, value)


def check_config(config: Mapping[str, Any], limits: Mapping[str, Limit], where: str | os.PathLike[str]) -> None:
    """Check every key of ``limits`` (dotted paths into ``config``, such as ``model.unn_iter``) against its limit.

    Raises:
        ModelFileError: ``where: KEY must be ..., not VALUE`` for the first value out of range or of the wrong type.
    """
    for key, limit in limits.items():
        node: Any = config
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict):
                parent = ".".join(parts[:depth])
                raise ModelFileError(f"{where}: {parent} must be an object, not {short_value(node)}")
            node = node.get(part)
            if node is None:
                break
        if node is None:
            if limit.optional:
                continue
            raise ModelFileError(f"{where}: {key} is missing (it must be {limit.describe()})")
        if not limit.accepts(node):
            raise ModelFileError(f"{where}: {key} must be {limit.describe()}, not {short_value(node)}")


def short_value(value: Any) -> str:
    """``value`` as an error message quotes it: JSON for a scalar (at most 40 characters), else its type's name."""
    text = (
        json.dumps(value, ensure_ascii=False) if isinstance(value, str | int | float | bool) else type(value).__name__
    )
    return text if len(text) <= 40 else text[:37] + "..."
