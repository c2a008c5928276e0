"""The `rlo` command. Subcommands live in `rlo_cli.commands`, one module each; they import
torch, timm and transformers inside their functions so `rlo --help` stays instant."""

from __future__ import annotations

from typing import Optional

import typer

from rlo_cli.commands import (finetune, gan, models, profiles, quantize, reproduce, runs, train,
                              tui)

app = typer.Typer(
    name="rlo",
    help="Train with the Rooted Logistic Objective: images, language models, quantization, GANs.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        import rlo_core

        typer.echo(f"rlo {rlo_core.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    from rlo_cli.common import setup_logging

    setup_logging(verbose)


train.register(app)
finetune.register(app)
quantize.register(app)
gan.register(app)
tui.register(app)
models.register(app)
reproduce.register(app)
app.add_typer(runs.app, name="runs", help="List, compare, plot and export runs.")
app.add_typer(profiles.app, name="profiles", help="List, show and delete YAML profiles.")


def main() -> None:
    app()
