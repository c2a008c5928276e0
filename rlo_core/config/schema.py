"""Validation of option dictionaries (from YAML profiles or the command line) against a
typed dataclass config, with errors that name the file, line and closest valid key."""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from rlo_core.errors import ConfigError


def config_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def normalize_key(key: str) -> str:
    """Profiles may spell options as on the command line (`batch-size`) or as fields (`batch_size`)."""
    return str(key).strip().replace("-", "_")


def _where(source: str | None, line: int | None) -> str:
    if source is None:
        return ""
    return f" in {source}" + (f", line {line}" if line else "")


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def coerce(name: str, annotation: Any, value: Any, where: str = "") -> Any:
    """Check `value` against `annotation` and convert the harmless cases.

    Converted: int to float, and numeric strings to numbers, because YAML 1.1 (PyYAML)
    reads `1e-4` without a dot as a string. Integral floats and strings like `1e3` become
    int, and a comma-separated string becomes a list.
    """
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(name, option, value, where)
            except ConfigError as error:
                errors.append(error)
        raise errors[0] if errors else ConfigError(f"Invalid value for '{name}'{where}.")
    if origin is Literal:
        choices = get_args(annotation)
        text = value.lower() if isinstance(value, str) else value
        lowered = {c.lower() if isinstance(c, str) else c: c for c in choices}
        if text in lowered:
            return lowered[text]
        raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected "
                          f"{_type_name(annotation)}.")
    if origin in (list, tuple):
        (item_type, *_) = get_args(annotation) or (Any,)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected a list.")
        return [coerce(name, item_type, item, where) for item in value]
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected true or false.")
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected a number.")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected a number.")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected an integer.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
            try:
                number = float(value)
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected an integer.")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        hint = (" YAML reads unquoted yes, no, on, off, true and false as booleans, so quote "
                "the value." if isinstance(value, bool) else "")
        raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected a string.{hint}")
    if annotation is Path:
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
        raise ConfigError(f"Invalid value {value!r} for '{name}'{where}: expected a path.")
    return value


def validate_options(cls: type, options: dict[str, Any], *, source: str | None = None,
                     lines: dict[str, int] | None = None) -> dict[str, Any]:
    """Validate and convert `options` for the dataclass `cls`; returns normalized keys."""
    hints = field_types(cls)
    valid = [name for name in config_fields(cls)]
    lines = lines or {}
    result: dict[str, Any] = {}
    spelling: dict[str, Any] = {}
    for raw_key, value in options.items():
        key = normalize_key(raw_key)
        where = _where(source, lines.get(raw_key))
        if key in spelling:
            raise ConfigError(f"Option '{key}' is given twice{where}: as '{spelling[key]}' and "
                              f"as '{raw_key}'. Keep one of them.")
        spelling[key] = raw_key
        if key not in hints:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"Unknown option '{raw_key}'{where}.{hint} Valid options: "
                              f"{', '.join(valid)}.")
        result[key] = coerce(key, hints[key], value, where)
    return result


def build_config(cls: type, options: dict[str, Any]) -> Any:
    """Instantiate `cls` with validated options, running its `validate()` if it has one."""
    config = cls(**options)
    check = getattr(config, "validate", None)
    if callable(check):
        check()
    return config


def to_dict(config: Any) -> dict[str, Any]:
    """Plain, YAML-safe dictionary of a dataclass config."""
    out = {}
    for key, value in dataclasses.asdict(config).items():
        out[key] = str(value) if isinstance(value, Path) else value
    return out
