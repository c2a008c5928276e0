"""Profile validation: every error names the file, line and fix, and YAML 1.1 quirks are handled."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.config import resolve_config
from rlo_core.config.profiles import save_profile
from rlo_core.errors import ConfigError
from rlo_core.train.config import TrainConfig


def write_profile(tmp_path, text, name="profile.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_config(TrainConfig, "train", profile=str(path))
    return str(info.value)


def test_unknown_key_names_file_line_and_closest_key(tmp_path):
    path = write_profile(tmp_path, "command: train\nepochs: 3\nbatchsize: 32\n")
    message = config_error(path)
    assert str(path) in message
    assert "line 3" in message
    assert "Did you mean 'batch_size'?" in message


def test_wrong_type_names_option_value_and_line(tmp_path):
    path = write_profile(tmp_path, "command: train\nepochs: three\n")
    message = config_error(path)
    assert "'epochs'" in message
    assert "'three'" in message
    assert "line 2" in message
    assert "expected an integer" in message


def test_float_option_rejects_text(tmp_path):
    path = write_profile(tmp_path, "command: train\nk: large\n")
    assert "expected a number" in config_error(path)


def test_bool_for_string_option_suggests_quoting(tmp_path):
    # YAML 1.1 reads an unquoted `no` as false.
    path = write_profile(tmp_path, "command: train\ndataset: no\n")
    message = config_error(path)
    assert "expected a string" in message
    assert "quote the value" in message


def test_invalid_choice_lists_choices(tmp_path):
    path = write_profile(tmp_path, "command: train\noptimizer: lion\n")
    message = config_error(path)
    assert "'lion'" in message
    assert "'adamw'" in message


def test_profile_for_other_command_rejected(tmp_path):
    path = write_profile(tmp_path, "command: gan\nepochs: 3\n")
    message = config_error(path)
    assert "is for 'rlo gan', not 'rlo train'" in message


def test_yaml_exponent_without_dot_loads_as_float(tmp_path):
    assert yaml.safe_load("lr: 1e-4")["lr"] == "1e-4"  # the PyYAML (YAML 1.1) quirk itself
    path = write_profile(tmp_path, "command: train\nlr: 1e-4\nweight_decay: 5e-5\n")
    config, _ = resolve_config(TrainConfig, "train", profile=str(path))
    assert isinstance(config.lr, float)
    assert config.lr == 0.0001
    assert config.weight_decay == 5e-5


def test_integer_option_accepts_exponent(tmp_path):
    path = write_profile(tmp_path, "command: train\nmax_steps: 1e3\n")
    config, _ = resolve_config(TrainConfig, "train", profile=str(path))
    assert config.max_steps == 1000


def test_integer_option_rejects_fraction(tmp_path):
    path = write_profile(tmp_path, "command: train\nepochs: 2.5\n")
    assert "expected an integer" in config_error(path)


def test_invalid_yaml_reports_line_and_column(tmp_path):
    path = write_profile(tmp_path, "command: train\nepochs: 3\n  lr: 1\n")
    message = config_error(path)
    assert "Invalid YAML" in message
    assert "line 3, column 5" in message


def test_profile_not_a_mapping_rejected(tmp_path):
    path = write_profile(tmp_path, "- train\n- 3\n")
    assert "must be a YAML mapping" in config_error(path)


def test_duplicate_key_rejected(tmp_path):
    path = write_profile(tmp_path, "command: train\nlr: 0.1\nepochs: 2\nlr: 0.2\n")
    message = config_error(path)
    assert "'lr' is set twice" in message
    assert "lines 2 and 4" in message


def test_dash_and_underscore_spelling_conflict(tmp_path):
    path = write_profile(tmp_path, "command: train\nbatch-size: 8\nbatch_size: 16\n")
    assert "given twice" in config_error(path)


def test_dash_spelling_accepted(tmp_path):
    path = write_profile(tmp_path, "command: train\nbatch-size: 8\n")
    config, _ = resolve_config(TrainConfig, "train", profile=str(path))
    assert config.batch_size == 8


def test_missing_profile_name_is_error():
    with pytest.raises(ConfigError) as info:
        resolve_config(TrainConfig, "train", profile="no-such-profile")
    assert "'no-such-profile' was not found" in str(info.value)


def test_missing_profile_name_suggests_close_name():
    save_profile("digits-small", "train", {"dataset": "digits"})
    with pytest.raises(ConfigError) as info:
        resolve_config(TrainConfig, "train", profile="digits-smal")
    assert "Did you mean 'digits-small'?" in str(info.value)


def test_missing_profile_path_is_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve_config(TrainConfig, "train", profile=str(tmp_path / "absent.yaml"))
    assert "was not found" in str(info.value)


def test_schema_check_rejects_nonpositive_k(tmp_path):
    path = write_profile(tmp_path, "command: train\nk: 0\n")
    assert "--k must be > 0" in config_error(path)


def test_choice_is_case_insensitive(tmp_path):
    path = write_profile(tmp_path, "command: train\noptimizer: AdamW\n")
    config, _ = resolve_config(TrainConfig, "train", profile=str(path))
    assert config.optimizer == "adamw"


@pytest.mark.parametrize("text, expected", [
    ("command: train\nbatchsize: 32\n", "Did you mean 'batch_size'?"),
    ("command: train\nepochs: three\n", "expected an integer"),
    ("command: gan\n", "is for 'rlo gan'"),
    ("command: train\nepochs: 3\n  lr: 1\n", "line 3, column 5"),
])
def test_cli_prints_error_without_traceback(tmp_path, monkeypatch, text, expected):
    monkeypatch.setenv("COLUMNS", "400")
    path = write_profile(tmp_path, text)
    result = CliRunner().invoke(app, ["train", "--profile", str(path), "--print-config"])
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_cli_missing_profile_fails():
    result = CliRunner().invoke(app, ["train", "--profile", "no-such-profile", "--print-config"])
    assert result.exit_code == 2
    assert result.stdout == ""
