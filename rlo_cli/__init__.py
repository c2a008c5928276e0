"""Command-line interface of rlo (Typer). The work happens in `rlo_core`."""
