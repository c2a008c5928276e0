"""Find run directories, read their config, and resolve user references to them (a path, a
name, or `last`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from rlo_core.errors import ConfigError
from rlo_core.runs.run import default_runs_dir

# `<YYYYmmdd-HHMMSS>-<command>-<name>`, with an optional `-2`, `-3` suffix added by Run.create.
RUN_DIR_PATTERN = re.compile(r"^(?P<stamp>\d{8}-\d{6})-(?P<command>[a-z]+)-(?P<name>.+)$")


def is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file()


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """Load a run's config.yaml with `yaml.safe_load`; an unreadable file gives `{}`."""
    try:
        data = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def run_command(run_dir: Path) -> str:
    """Return the command that made a run, from the directory name or else from config.yaml."""
    match = RUN_DIR_PATTERN.match(Path(run_dir).name)
    if match:
        return match["command"]
    return str(read_run_config(run_dir).get("command", "unknown"))


def run_name(run_dir: Path) -> str:
    """Return the run name without the timestamp and command prefix (or the directory name)."""
    match = RUN_DIR_PATTERN.match(Path(run_dir).name)
    return match["name"] if match else Path(run_dir).name


def _creation_order(run_dir: Path) -> tuple[str, int, str]:
    # The name's timestamp has one-second resolution, so config.yaml's modification time
    # orders runs created within the same second.
    match = RUN_DIR_PATTERN.match(run_dir.name)
    try:
        written = (run_dir / "config.yaml").stat().st_mtime_ns
    except OSError:
        written = 0
    return (match["stamp"] if match else "", written, run_dir.name)


def find_runs(runs_dir: Path | None = None, command: str | None = None) -> list[Path]:
    """Return the run directories under `runs_dir`, oldest first."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not runs_dir.is_dir():
        return []
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir() and is_run_dir(p)),
                  key=_creation_order)
    if command is not None:
        runs = [p for p in runs if run_command(p) == command]
    return runs


def resolve_run(reference: str | Path, runs_dir: Path | None = None,
                command: str | None = None) -> Path:
    """Resolve `last`, a run directory path, or a unique run name (or name suffix).

    A name matches a directory whose name equals it or ends with `-<name>`, so `rlo-k3-m3`
    matches `20240101-120000-train-cifar10-vit-rlo-k3-m3` but `3-m3` does not.
    """
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    reference = str(reference)
    if reference == "last":
        runs = find_runs(runs_dir, command)
        if not runs:
            kind = f"{command} " if command else ""
            raise ConfigError(
                f"No {kind}run found under {runs_dir} to use for 'last'. Pass the run directory "
                "explicitly, or set --runs-dir (or RLO_RUNS_DIR) to where your runs are.")
        return runs[-1]
    path = Path(reference)
    if is_run_dir(path):
        return path
    runs = find_runs(runs_dir)
    exact = [p for p in runs if p.name == reference]
    if exact:
        return exact[0]
    matches = [p for p in runs if p.name.endswith(f"-{reference}")]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches[:5])
        raise ConfigError(f"Run reference '{reference}' matches several runs ({names}). "
                          "Give the full directory name or path.")
    raise ConfigError(
        f"Run '{reference}' was not found: it is not a directory containing config.yaml, nor a "
        f"run name under {runs_dir}. List runs with 'rlo runs list --runs-dir DIR'.")
