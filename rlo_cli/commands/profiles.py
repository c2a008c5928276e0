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
    from rlo_core.config.profiles import shipped_profiles_dir, user_profiles_dir

    profiles = list_profiles()
    if not profiles:
        console.print(f"No profiles in {user_profiles_dir()} or {shipped_profiles_dir()}. "
                      "Save one with 'rlo train ... --save-profile NAME'.", highlight=False)
        return
    table = Table(title="Profiles")
    for column in ("name", "command", "description", "origin", "file"):
        table.add_column(column, overflow="fold")
    for info in profiles:
        table.add_row(info.name, info.command, info.description, info.origin, str(info.path))
    console.print(table)


@app.command("show")
@handle_errors
def show_command(name: str = typer.Argument(..., help="Profile name or path.")) -> None:
    """Print a profile's YAML."""
    from rlo_core.config import find_profile

    path = find_profile(name)
    console.print(f"# {path}", highlight=False, markup=False, soft_wrap=True)
    console.print(path.read_text(encoding="utf-8"), highlight=False, markup=False, end="",
                  soft_wrap=True)


@app.command("delete")
@handle_errors
def delete_command(name: str = typer.Argument(..., help="User profile name.")) -> None:
    """Delete a user profile (shipped profiles cannot be deleted)."""
    from rlo_core.config import delete_profile

    path = delete_profile(name)
    console.print(f"Deleted {path}")
