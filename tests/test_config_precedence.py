"""Resolved configuration precedence: command-line flag > profile > built-in default."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.config import resolve_config
from rlo_core.train.config import TrainConfig

PROFILE = "command: train\ndescription: precedence test\nepochs: 7\nlr: 1e-2\nnet: resnet18\n"


def write_profile(tmp_path):
    path = tmp_path / "precedence.yaml"
    path.write_text(PROFILE, encoding="utf-8")
    return path


def print_config(*args: str) -> dict:
    result = CliRunner().invoke(app, ["train", *args, "--print-config"])
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.stdout)


def test_resolve_defaults_without_profile():
    config, path = resolve_config(TrainConfig, "train")
    assert config == TrainConfig()
    assert path is None


def test_resolve_profile_overrides_default(tmp_path):
    config, path = resolve_config(TrainConfig, "train", profile=str(write_profile(tmp_path)))
    assert config.epochs == 7
    assert config.lr == 0.01
    assert config.batch_size == TrainConfig().batch_size
    assert path == tmp_path / "precedence.yaml"


def test_resolve_override_beats_profile(tmp_path):
    config, _ = resolve_config(TrainConfig, "train", profile=str(write_profile(tmp_path)),
                               overrides={"epochs": 3, "batch-size": 64})
    assert config.epochs == 3
    assert config.batch_size == 64
    assert config.net == "resnet18"


def test_cli_defaults():
    printed = print_config()
    assert printed["command"] == "train"
    assert printed["epochs"] == TrainConfig().epochs
    assert printed["k"] == TrainConfig().k


def test_cli_profile_overrides_default(tmp_path):
    printed = print_config("--profile", str(write_profile(tmp_path)))
    assert printed["epochs"] == 7
    assert printed["lr"] == 0.01
    assert printed["net"] == "resnet18"
    assert printed["batch_size"] == TrainConfig().batch_size


def test_cli_flag_beats_profile(tmp_path):
    printed = print_config("--profile", str(write_profile(tmp_path)), "--lr", "0.5", "--k", "8")
    assert printed["lr"] == 0.5
    assert printed["k"] == 8.0
    assert printed["epochs"] == 7


def test_cli_flag_equal_to_default_beats_profile(tmp_path):
    # --epochs 200 is the default value, but given on the command line it must still win.
    default_epochs = TrainConfig().epochs
    printed = print_config("--profile", str(write_profile(tmp_path)),
                           "--epochs", str(default_epochs))
    assert printed["epochs"] == default_epochs


def test_cli_profile_by_user_name(tmp_path):
    saved = CliRunner().invoke(app, ["train", "--epochs", "4", "--save-profile", "four-epochs"])
    assert saved.exit_code == 0, saved.output
    printed = print_config("--profile", "four-epochs", "--k", "5")
    assert printed["epochs"] == 4
    assert printed["k"] == 5.0
