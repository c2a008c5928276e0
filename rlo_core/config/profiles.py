"""YAML profiles: shipped in `profiles/`, saved by users, overridable from the command line.

A profile is a mapping with a `command:` key, an optional `description:`, and the options of
that command (spelled `batch_size` or `batch-size`). A run's `config.yaml` is also a valid
profile: its `environment:` section is ignored. Precedence when resolving a configuration:
command-line flag > profile > built-in default.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlo_core import atomic
from rlo_core.config.schema import build_config, validate_options
from rlo_core.errors import ConfigError

log = logging.getLogger(__name__)

RESERVED_KEYS = ("command", "description", "environment")
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def shipped_profiles_dir() -> Path:
    """Return the folder of shipped profiles: the repository's `profiles/`, or RLO_SHIPPED_PROFILES."""
    override = os.environ.get("RLO_SHIPPED_PROFILES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "profiles"


def user_profiles_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rlo" / "profiles"


@dataclass
class ProfileInfo:
    name: str
    path: Path
    command: str
    description: str
    origin: str  # "user" or "shipped"


def find_profile(reference: str | Path) -> Path:
    """Resolve a profile name (user profiles first, then shipped) or a path to a YAML file."""
    path = Path(reference)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if path.is_file():
            return path
        raise ConfigError(f"Profile file '{reference}' was not found. Check the path, or list "
                          "available profiles with 'rlo profiles list'.")
    for folder in (user_profiles_dir(), shipped_profiles_dir()):
        for suffix in (".yaml", ".yml"):
            candidate = folder / f"{reference}{suffix}"
            if candidate.is_file():
                return candidate
    names = sorted(info.name for info in list_profiles())
    import difflib

    close = difflib.get_close_matches(str(reference), names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"Profile '{reference}' was not found in {user_profiles_dir()} or "
        f"{shipped_profiles_dir()}.{hint} Available: {', '.join(names) or 'none'}. "
        "Pass a name from 'rlo profiles list' or a path to a YAML file.")


def _key_lines(text: str, path: Path) -> dict[str, int]:
    """Map each top-level key of a YAML mapping to its 1-based line number.

    Raises ConfigError for a key given twice, which `yaml.safe_load` would silently resolve
    to the last value.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    lines: dict[str, int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        line = key.start_mark.line + 1
        if key.value in lines:
            raise ConfigError(f"Option '{key.value}' is set twice in profile {path}, at lines "
                              f"{lines[key.value]} and {line}. Delete one of them.")
        lines[key.value] = line
    return lines


def read_profile(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse a profile with `yaml.safe_load`; returns the mapping and the line of each key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"Could not read profile {path}: {error.strerror}.") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"Invalid YAML in profile {path}{where}: {problem}. Fix the syntax "
                          "there (indentation, a missing colon or an unclosed quote).") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"Profile {path} must be a YAML mapping of option: value, "
                          f"got {type(data).__name__}.")
    return data, _key_lines(text, path)


def load_profile(reference: str | Path, command: str, schema: type) -> tuple[dict[str, Any], Path]:
    """Load and validate a profile for `command`; returns (options, path)."""
    path = find_profile(reference)
    data, lines = read_profile(path)
    profile_command = data.get("command")
    if profile_command is not None and profile_command != command:
        raise ConfigError(
            f"Profile {path} is for 'rlo {profile_command}', not 'rlo {command}'. Use it with "
            f"'rlo {profile_command} --profile {reference}', or pick a {command} profile "
            "from 'rlo profiles list'.")
    options = {k: v for k, v in data.items() if k not in RESERVED_KEYS}
    return validate_options(schema, options, source=str(path), lines=lines), path


def resolve_config(schema: type, command: str, *, profile: str | Path | None = None,
                   overrides: dict[str, Any] | None = None) -> tuple[Any, Path | None]:
    """Build a config: command-line `overrides` > `profile` > the dataclass defaults."""
    options: dict[str, Any] = {}
    path = None
    if profile is not None:
        options, path = load_profile(profile, command, schema)
        log.info("Using profile %s", path)
    options.update(validate_options(schema, overrides or {}, source="the command line"))
    try:
        return build_config(schema, options), path
    except ValueError as error:
        raise ConfigError(str(error)) from error


def check_profile_name(name: str) -> str:
    """Return a user profile name without a .yaml suffix, or raise ConfigError for a name that
    is not a plain file name (a path separator or a leading dot)."""
    for suffix in (".yaml", ".yml"):
        name = name.removesuffix(suffix)
    if not PROFILE_NAME.match(name):
        raise ConfigError(f"Invalid profile name '{name}': use letters, digits, '.', '-' or '_', "
                          "starting with a letter or digit (for example 'cifar10-long').")
    return name


def save_profile(name: str, command: str, options: dict[str, Any],
                 description: str = "") -> Path:
    """Save options as a user profile and return its path (an existing one is replaced)."""
    name = check_profile_name(name)
    path = user_profiles_dir() / f"{name}.yaml"
    if path.exists():
        log.info("Replacing user profile %s", path)
    document = {"command": command, **({"description": description} if description else {}),
                **options}
    atomic.write_text(path, yaml.safe_dump(document, sort_keys=False))
    return path


def list_profiles() -> list[ProfileInfo]:
    """User and shipped profiles; a user profile hides a shipped one of the same name."""
    seen: dict[str, ProfileInfo] = {}
    for origin, folder in (("user", user_profiles_dir()), ("shipped", shipped_profiles_dir())):
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            if path.stem in seen:
                continue
            try:
                data, _ = read_profile(path)
            except ConfigError as error:
                log.warning("Skipping profile %s: %s", path, error)
                continue
            seen[path.stem] = ProfileInfo(path.stem, path, str(data.get("command", "?")),
                                          str(data.get("description") or ""), origin)
    return sorted(seen.values(), key=lambda info: (info.command, info.name))


def delete_profile(name: str) -> Path:
    """Delete a user profile; shipped profiles cannot be deleted."""
    name = check_profile_name(name)
    for suffix in (".yaml", ".yml"):
        path = user_profiles_dir() / f"{name}{suffix}"
        if path.is_file():
            path.unlink()
            return path
    if any((shipped_profiles_dir() / f"{name}{s}").is_file() for s in (".yaml", ".yml")):
        raise ConfigError(f"Profile '{name}' is shipped with rlo and cannot be deleted. Save a "
                          f"user profile of the same name to override it.")
    raise ConfigError(f"User profile '{name}' was not found in {user_profiles_dir()}.")
