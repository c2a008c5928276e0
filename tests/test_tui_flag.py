"""`--tui` on train, finetune and gan hands the command line to the dashboard launcher."""

import sys

import pytest
from typer.testing import CliRunner

from rlo_cli.app import app


@pytest.mark.parametrize("command", [["train"], ["finetune"], ["gan"]])
def test_tui_flag_starts_dashboard(command, monkeypatch, tmp_path):
    calls = []

    def fake_launch(argv, runs_dir):
        calls.append((argv, runs_dir))
        return 0

    monkeypatch.setattr("rlo_cli.tui.launch.launch_with_dashboard", fake_launch)
    argv = [*command, "--tui", "--runs-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", ["rlo", *argv])
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert len(calls) == 1
    assert calls[0][0] == argv
    assert calls[0][1] == tmp_path
