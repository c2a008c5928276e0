"""`rlo --help`, `--help` of every subcommand, `--version`, and a help that stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

import rlo_core
from rlo_cli.app import app

HEAVY_MODULES = ("torch", "timm", "transformers")


def command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every subcommand path under a click command, like ("runs", "plot")."""
    # Typer may vendor its own click, so test for a group by its `commands` mapping.
    paths = []
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, dict):
        for name, sub in sorted(subcommands.items()):
            paths.append((*prefix, name))
            paths.extend(command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = command_paths(typer.main.get_command(app))


def test_root_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("train", "runs", "profiles"):
        assert name in result.stdout


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(path) for path in COMMANDS])
def test_subcommand_help_exits_zero(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


def find_command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(path) for path in COMMANDS])
def test_option_help_shown_in_full(path, monkeypatch):
    # Rich markup swallows an unescaped "[default: ...]" in help text, so each help string
    # must appear in the output as written (with the escaping backslash removed).
    monkeypatch.setenv("COLUMNS", "1000")
    output = " ".join(CliRunner().invoke(app, [*path, "--help"]).stdout.split())
    for param in find_command(path).params:
        text = getattr(param, "help", None)
        if not text:
            continue
        expected = " ".join(text.replace("\\[", "[").split())
        option = param.opts[0] if param.opts else param.name
        assert expected in output, f"{option}: help shows less than {expected!r}"


def test_version_prints_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"rlo {rlo_core.__version__}"


HELP_PROBE = """
import json, sys
from typer.testing import CliRunner
from rlo_cli.app import app
heavy = {heavy!r}
loaded = {{}}
for args in [["--help"]] + [list(path) + ["--help"] for path in {paths!r}]:
    CliRunner().invoke(app, args)
    for name in heavy:
        if name in sys.modules and name not in loaded:
            loaded[name] = " ".join(args)
print(json.dumps(loaded))
"""


def test_help_does_not_import_heavy_modules():
    # A fresh interpreter, because this test process may already have imported torch.
    probe = HELP_PROBE.format(heavy=HEAVY_MODULES, paths=COMMANDS)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {}, f"imported while showing help (module: first command): {loaded}"
