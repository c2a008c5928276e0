"""`rlo runs ...`."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """Not available yet in this version."""
    from rlo_cli.common import not_available

    not_available("runs list")
