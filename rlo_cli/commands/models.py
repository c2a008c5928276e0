"""`rlo models`: the table of registered networks."""

from __future__ import annotations

from typing import Optional

import typer

from rlo_cli.common import console, handle_errors


def register(app: typer.Typer) -> None:
    @app.command("models")
    @handle_errors
    def models(
        dataset: Optional[str] = typer.Option(None, "--dataset", help="Take the class count and image size from this data set (for example cifar100)."),
        num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Class count for the parameter counts \\[default: the data set's, else 10]."),
        image_size: Optional[int] = typer.Option(None, "--image-size", help="Input size in pixels \\[default: the data set's, else each net's own; 384 for vit_timm]."),
        patch: Optional[int] = typer.Option(None, "--patch", help="Patch size (window size for Swin) in pixels \\[default: each net's own]."),
        dim_head: Optional[int] = typer.Option(None, "--dim-head", help="Transformer embedding width \\[default: each net's own]."),
    ) -> None:
        """List the networks `rlo train --net` accepts, with parameter counts."""
        print_models_table(dataset, num_classes, image_size, patch, dim_head)


def print_models_table(dataset: Optional[str] = None, num_classes: Optional[int] = None,
                       image_size: Optional[int] = None, patch: Optional[int] = None,
                       dim_head: Optional[int] = None) -> None:
    """Print the registered nets with parameter counts (also `rlo train --list-nets`)."""
    from rich.table import Table

    from rlo_core.errors import RloError
    from rlo_core.models import count_net_parameters, list_nets, preferred_image_size

    dataset_size = None
    if dataset is not None:
        from rlo_core.data import dataset_spec

        spec = dataset_spec(dataset)
        num_classes = num_classes or spec.num_classes
        dataset_size = spec.image_size
    num_classes = num_classes or 10

    title = f"Networks, parameters at {num_classes} classes"
    table = Table(title=title + (f" ({dataset})" if dataset else ""))
    for column in ("name", "aliases", "family", "default lr", "image size", "parameters",
                   "notes"):
        table.add_column(column, overflow="fold")
    for spec in list_nets():
        size = preferred_image_size(spec.name, image_size, dataset_size)
        notes = spec.notes
        try:
            count = count_net_parameters(spec.name, num_classes, size, patch=patch,
                                         dim_head=dim_head)
            params = f"{count:,}"
        except RloError as error:  # a size this net cannot take is reported, not fatal
            params = "n/a"
            notes = f"{notes}. {error}"
        table.add_row(spec.name, ", ".join(spec.aliases), spec.family,
                      f"{spec.default_lr:g}", str(size), params, notes)
    console.print(table)
