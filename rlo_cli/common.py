"""Helpers shared by the subcommands: error display, logging, and config resolution."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Iterable

import typer
from rich.console import Console

from rlo_core.console import stderr_console

from rlo_core.errors import RloError

err_console = stderr_console()
console = Console()

# Options that steer the command itself and are not part of a pipeline config.
CONTROL_OPTIONS = {"profile", "save_profile", "print_config", "resume", "tui", "nproc", "list_nets",
                   "verbose", "ctx"}


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        return
    handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False,
                          markup=False, log_time_format="[%X]")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("PIL", "matplotlib", "urllib3", "filelock", "httpx", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-paragraph error and return the Exit to raise.

    In a worker of a distributed job the error names the rank, because every rank that hits
    the same bad input prints it.
    """
    import os

    label = "Error:"
    if os.environ.get("WORLD_SIZE", "1") not in ("", "1") and "RANK" in os.environ:
        label = f"Error (rank {os.environ['RANK']}):"
    from rich.markup import escape

    # Messages quote paths and library errors, which may contain [brackets] Rich would parse.
    err_console.print(f"[bold red]{label}[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(function: Callable) -> Callable:
    """Turn RloError (and Ctrl-C) raised by a command into a message and an exit code."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RloError as error:
            raise fail(str(error), error.exit_code) from None
        except KeyboardInterrupt:
            raise fail("Interrupted.", 130) from None
        except RuntimeError as error:
            if not is_lost_peer(error):
                raise
            first_line = str(error).strip().splitlines()[0]
            raise fail(f"Lost the connection to another process of this job ({first_line}). "
                       "That process most likely failed or was killed; the launcher's error "
                       "names it.", 1) from None

    return wrapper


def is_lost_peer(error: RuntimeError) -> bool:
    """Return True for a collective that failed because another rank of a distributed job
    went away. torch raises DistBackendError (a RuntimeError) for backend failures, and with
    torch 2.14.1 on CPU gloo's TCP transport raised a plain RuntimeError naming its source."""
    import os
    import sys

    if os.environ.get("WORLD_SIZE", "1") in ("", "1"):
        return False
    torch = sys.modules.get("torch")
    backend_error = getattr(getattr(torch, "distributed", None), "DistBackendError", None)
    if backend_error is not None and isinstance(error, backend_error):
        return True
    return "gloo/transport" in str(error)


def explicit_options(ctx: typer.Context, values: dict[str, Any],
                     skip: Iterable[str] = CONTROL_OPTIONS) -> dict[str, Any]:
    """Return the options the user gave on the command line (or through an environment
    variable), leaving out those at their defaults, so a profile can fill them in."""
    given = {}
    for name, value in values.items():
        if name in skip:
            continue
        source = ctx.get_parameter_source(name)
        # Typer vendors its own click, so compare by name instead of importing ParameterSource.
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            given[name] = value
    return given


def resolve_command_config(ctx: typer.Context, schema: type, command: str, values: dict[str, Any],
                           *, profile: str | None, save_profile: str | None,
                           print_config: bool) -> Any | None:
    """Resolve flags > profile > defaults. Returns None when the command should stop after
    --print-config or --save-profile."""
    import yaml

    from rlo_core.config import resolve_config, save_profile as save, to_dict

    overrides = explicit_options(ctx, values)
    config, _ = resolve_config(schema, command, profile=profile, overrides=overrides)
    if save_profile:
        path = save(save_profile, command, to_dict(config))
        err_console.print(f"Saved profile '{save_profile}' to {path}")
    if print_config:
        console.print(yaml.safe_dump({"command": command, **to_dict(config)}, sort_keys=False),
                      end="", highlight=False, markup=False, soft_wrap=True)
    if save_profile or print_config:
        return None
    return config


# Options every job command shares; functions so each command gets its own Option object.
def profile_option(examples: str = "") -> Any:
    hint = f" ({examples})" if examples else ""
    return typer.Option(None, "--profile",
                        help=f"Profile name or YAML path{hint}; flags override it.")


def save_profile_option() -> Any:
    return typer.Option(None, "--save-profile",
                        help="Save the resolved options as a user profile and exit.")


def print_config_option() -> Any:
    return typer.Option(False, "--print-config", help="Print the resolved configuration and exit.")


def tui_option() -> Any:
    return typer.Option(False, "--tui", help="Open the dashboard on this run.")
