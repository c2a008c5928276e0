"""`rlo gan`."""

import typer


def register(app: typer.Typer) -> None:
    @app.command("gan", help="Not available yet in this version.")
    def gan() -> None:
        from rlo_cli.common import not_available

        not_available("gan")
