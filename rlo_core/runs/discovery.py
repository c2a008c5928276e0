"""Find run directories and resolve user references to them (a path, a name, or `last`)."""

from __future__ import annotations

from pathlib import Path

from rlo_core.errors import ConfigError
from rlo_core.runs.run import default_runs_dir


def is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file()


def find_runs(runs_dir: Path | None = None, command: str | None = None) -> list[Path]:
    """Return the run directories under `runs_dir`, oldest first (names start with a timestamp)."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not runs_dir.is_dir():
        return []
    runs = sorted(p for p in runs_dir.iterdir() if p.is_dir() and is_run_dir(p))
    if command is not None:
        runs = [p for p in runs if f"-{command}-" in p.name]
    return runs


def resolve_run(reference: str | Path, runs_dir: Path | None = None,
                command: str | None = None) -> Path:
    """Resolve `last`, a run directory path, or a unique run name (or name suffix)."""
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
    matches = [p for p in find_runs(runs_dir) if p.name == reference or p.name.endswith(reference)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches[:5])
        raise ConfigError(f"Run reference '{reference}' matches several runs ({names}). "
                          "Give the full directory name or path.")
    raise ConfigError(
        f"Run '{reference}' was not found: it is not a directory containing config.yaml, nor a "
        f"run name under {runs_dir}. List runs with 'rlo runs list --runs-dir DIR'.")
