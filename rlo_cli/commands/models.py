"""`rlo models`: the table of registered networks."""

from __future__ import annotations

import typer

from rlo_cli.common import console, handle_errors


def register(app: typer.Typer) -> None:
    @app.command("models")
    @handle_errors
    def models(
        num_classes: int = typer.Option(10, "--num-classes", help="Class count for the parameter counts."),
        image_size: int = typer.Option(32, "--image-size", help="Input size in pixels."),
    ) -> None:
        """List the networks `rlo train --net` accepts, with parameter counts."""
        from rich.table import Table

        from rlo_core.models import count_parameters, create_net, list_nets

        table = Table(title=f"Networks ({num_classes} classes, {image_size} px)")
        for column in ("name", "aliases", "parameters", "default lr", "notes"):
            table.add_column(column)
        for spec in list_nets():
            size = image_size if spec.default_image_size <= image_size else spec.default_image_size
            try:
                params = f"{count_parameters(create_net(spec.name, num_classes, size)):,}"
            except Exception as error:  # a net that cannot be built here is still listed
                params = f"n/a ({type(error).__name__})"
            table.add_row(spec.name, ", ".join(spec.aliases), params, f"{spec.default_lr:g}",
                          spec.notes)
        console.print(table)
