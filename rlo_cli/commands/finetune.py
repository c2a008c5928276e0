"""`rlo finetune`."""

import typer


def register(app: typer.Typer) -> None:
    @app.command("finetune", help="Not available yet in this version.")
    def finetune() -> None:
        from rlo_cli.common import not_available

        not_available("finetune")
