"""`rlo tui`: live dashboard of run directories."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rlo_cli.common import handle_errors

DEFAULT_REFRESH_S = 0.5  # the same default as rlo_cli.tui.DEFAULT_REFRESH_S, without importing Textual


def register(app: typer.Typer) -> None:
    @app.command("tui")
    @handle_errors
    def tui(
        runs: Optional[List[str]] = typer.Argument(
            None, help="Runs to show (directory, name or 'last') \\[default: every run in --runs-dir]."),
        runs_dir: Optional[Path] = typer.Option(
            None, "--runs-dir", envvar="RLO_RUNS_DIR",
            help="Folder holding the run directories \\[default: ./runs]."),
        refresh: float = typer.Option(
            DEFAULT_REFRESH_S, "--refresh", metavar="SECONDS",
            help="Seconds between reads of the run files."),
    ) -> None:
        """Watch runs live: loss, accuracy and perplexity curves, GPU and CPU use, and the log."""
        from rlo_core.errors import ConfigError
        from rlo_core.runs import default_runs_dir, resolve_run

        if not refresh > 0:
            raise ConfigError(f"Invalid --refresh {refresh}: give a number of seconds above 0, "
                              "for example --refresh 0.5.")
        folder = runs_dir if runs_dir is not None else default_runs_dir()
        paths = [resolve_run(reference, folder) for reference in runs] if runs else None

        from rlo_cli.tui import DashboardApp

        DashboardApp(folder, paths, refresh_seconds=refresh).run()
