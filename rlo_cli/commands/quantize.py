"""`rlo quantize`."""

import typer


def register(app: typer.Typer) -> None:
    @app.command("quantize", help="Not available yet in this version.")
    def quantize() -> None:
        from rlo_cli.common import not_available

        not_available("quantize")
