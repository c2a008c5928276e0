"""`--save-profile` and `rlo profiles list|show|delete`, and every shipped profile."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.config.schema import normalize_key

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "profiles"
SHIPPED = sorted([*SHIPPED_DIR.glob("*.yaml"), *SHIPPED_DIR.glob("*.yml")])
# Options that an environment variable in the test set-up overrides.
ENVIRONMENT_KEYS = {"runs_dir", "data_dir"}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")


def test_save_profile_then_list_show_delete(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    saved = invoke("train", "--dataset", "digits", "--net", "mlp", "--k", "8", "--m", "10",
                   "--save-profile", "digits-k8")
    assert saved.exit_code == 0, saved.output
    path = tmp_path / "config" / "rlo" / "profiles" / "digits-k8.yaml"
    assert path.is_file()

    listed = invoke("profiles", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if "digits-k8" in line)
    assert "train" in row
    assert "user" in row

    shown = invoke("profiles", "show", "digits-k8")
    assert shown.exit_code == 0, shown.output
    document = yaml.safe_load(shown.stdout)
    assert document["command"] == "train"
    assert document["k"] == 8.0
    assert document["m"] == 10.0
    assert document["net"] == "mlp"

    deleted = invoke("profiles", "delete", "digits-k8")
    assert deleted.exit_code == 0, deleted.output
    assert not path.exists()
    assert "digits-k8" not in invoke("profiles", "list").stdout


def test_save_profile_does_not_run():
    saved = invoke("train", "--dataset", "digits", "--save-profile", "no-run")
    assert saved.exit_code == 0, saved.output
    assert not Path("runs").exists()


def test_saved_profile_round_trips_config():
    first = invoke("train", "--lr", "3e-4", "--epochs", "9", "--save-profile", "again",
                   "--print-config")
    second = invoke("train", "--profile", "again", "--print-config")
    assert yaml.safe_load(second.stdout) == yaml.safe_load(first.stdout)


def test_delete_missing_user_profile_fails():
    result = invoke("profiles", "delete", "never-saved")
    assert result.exit_code == 2
    assert "was not found" in result.stderr


def test_invalid_profile_name_rejected():
    result = invoke("train", "--save-profile", "../escape")
    assert result.exit_code == 2
    assert "Invalid profile name" in result.stderr


def test_shipped_profile_cannot_be_deleted(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "demo.yaml").write_text("command: train\ndescription: demo\nepochs: 1\n")
    monkeypatch.setenv("RLO_SHIPPED_PROFILES", str(shipped))
    listed = invoke("profiles", "list")
    row = next(line for line in listed.stdout.splitlines() if "demo" in line)
    assert "shipped" in row
    result = invoke("profiles", "delete", "demo")
    assert result.exit_code == 2
    assert "cannot be deleted" in result.stderr
    assert (shipped / "demo.yaml").is_file()


def test_user_profile_hides_shipped_one(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "demo.yaml").write_text("command: train\nepochs: 1\n")
    monkeypatch.setenv("RLO_SHIPPED_PROFILES", str(shipped))
    invoke("train", "--epochs", "2", "--save-profile", "demo")
    printed = yaml.safe_load(invoke("train", "--profile", "demo", "--print-config").stdout)
    assert printed["epochs"] == 2


def test_list_skips_broken_profile(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "unparsable.yaml").write_text("command: train\nlr: [1\n")
    (shipped / "fine.yaml").write_text("command: train\n")
    monkeypatch.setenv("RLO_SHIPPED_PROFILES", str(shipped))
    listed = invoke("profiles", "list")
    assert listed.exit_code == 0, listed.output
    assert "fine" in listed.stdout
    assert "unparsable" not in listed.stdout


def same_value(printed, in_profile) -> bool:
    if printed == in_profile:
        return True
    try:
        return float(printed) == float(in_profile)  # `lr: 1e-4` loads as the string '1e-4'
    except (TypeError, ValueError):
        return str(printed).lower() == str(in_profile).lower()


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_profile_prints_config(path):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    command = document["command"]
    result = invoke(command, "--profile", path.stem, "--print-config")
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["command"] == command
    for key, value in document.items():
        option = normalize_key(key)
        if option in ("command", "description") or option in ENVIRONMENT_KEYS:
            continue
        assert same_value(printed[option], value), f"{path.name}: {option}"
