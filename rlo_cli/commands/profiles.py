"""`rlo profiles list|show|delete`."""

from __future__ import annotations

import typer

from rlo_cli.common import console, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("list")
@handle_errors
def list_command() -> None:
    """List shipped and user profiles."""
    from rich.table import Table

    from rlo_core.config import list_profiles

    table = Table(title="Profiles")
    for column in ("name", "command", "description", "origin"):
        table.add_column(column)
    for info in list_profiles():
        table.add_row(info.name, info.command, info.description, f"{info.origin} ({info.path})")
    console.print(table)


@app.command("show")
@handle_errors
def show_command(name: str = typer.Argument(..., help="Profile name or path.")) -> None:
    """Print a profile's YAML."""
    from rlo_core.config import find_profile

    path = find_profile(name)
    console.print(f"# {path}", highlight=False, markup=False)
    console.print(path.read_text(encoding="utf-8"), highlight=False, markup=False, end="")


@app.command("delete")
@handle_errors
def delete_command(name: str = typer.Argument(..., help="User profile name.")) -> None:
    """Delete a user profile (shipped profiles cannot be deleted)."""
    from rlo_core.config import delete_profile

    path = delete_profile(name)
    console.print(f"Deleted {path}")
