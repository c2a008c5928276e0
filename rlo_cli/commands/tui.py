"""`rlo tui`."""

import typer


def register(app: typer.Typer) -> None:
    @app.command("tui", help="Not available yet in this version.")
    def tui() -> None:
        from rlo_cli.common import not_available

        not_available("tui")
