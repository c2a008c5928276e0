"""`rlo gan` and `rlo gan generate` through the command line."""

import json

import pytest
import torch
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.config import resolve_config
from rlo_core.gan.config import GanConfig

TINY_FLAGS = ["--kimg", "0.016", "--tick", "0.008", "--snap", "1", "--batch", "8",
              "--resolution", "8", "--channel-base", "64", "--channel-max", "16", "--z-dim", "8",
              "--fid-samples", "16", "--fid-classifier-steps", "2", "--max-images", "64",
              "--grid", "2", "--name", "smoke"]


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """Run on one thread: these tiny networks gain nothing from more, and on a busy machine
    extra threads mostly wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_gan_help_lists_training_options_and_generate():
    result = CliRunner().invoke(app, ["gan", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--loss", "--k", "--kimg", "--snap", "--r1-gamma", "--arch", "--fid-inception",
                   "--resume", "--profile", "generate"):
        assert option in result.stdout, option


@pytest.mark.parametrize("loss", ["rlo", "ce"])
def test_gan_smoke_run_then_generate(tmp_path, loss):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, ["gan", *TINY_FLAGS, "--loss", loss, "--runs-dir",
                                      str(runs)])
    assert result.exit_code == 0, result.output
    assert "not comparable to published FID" in result.stdout
    (run_dir,) = runs.iterdir()
    snapshot = run_dir / "network-snapshot-000000.safetensors"
    assert snapshot.is_file()
    config = (run_dir / "config.yaml").read_text()
    assert f"loss: {loss}" in config

    grid = tmp_path / "grid.png"
    result = CliRunner().invoke(app, ["gan", "generate", "--network", str(snapshot),
                                      "--seeds", "0-3", "-o", str(grid)])
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(grid) as image:
        # 2 x 2 images of 8 px enlarged 8x (to 64 px), with 1-px borders at the source scale.
        assert image.size == (8 * (2 * 9 + 1), 8 * (2 * 9 + 1))


def test_gan_resume_extends_run(tmp_path):
    runs = tmp_path / "runs"
    first = CliRunner().invoke(app, ["gan", *TINY_FLAGS, "--fid-samples", "0", "--runs-dir",
                                     str(runs)])
    assert first.exit_code == 0, first.output
    (run_dir,) = runs.iterdir()
    result = CliRunner().invoke(app, ["gan", "--resume", str(run_dir), "--kimg", "0.032"])
    assert result.exit_code == 0, result.output
    status = json.loads((run_dir / "status.json").read_text())
    assert status["kimg"] == pytest.approx(0.032)


def test_gan_invalid_resolution_exits_with_message():
    result = CliRunner().invoke(app, ["gan", "--resolution", "30"])
    assert result.exit_code == 2
    assert "--resolution must be a power of two" in result.output


def test_gan_generate_missing_snapshot_exits_with_message(tmp_path):
    result = CliRunner().invoke(app, ["gan", "generate", "--network",
                                      str(tmp_path / "missing.safetensors")])
    assert result.exit_code == 2
    assert "was not found" in result.output


def test_gan_print_config_with_digits_profile():
    result = CliRunner().invoke(app, ["gan", "--profile", "gan-digits", "--loss", "ce",
                                      "--print-config"])
    assert result.exit_code == 0, result.output
    assert "command: gan" in result.stdout
    assert "loss: ce" in result.stdout
    assert "dataset: digits" in result.stdout


@pytest.mark.parametrize("profile", ["gan-digits", "gan-ffhq"])
def test_shipped_gan_profiles_validate(profile):
    config, path = resolve_config(GanConfig, "gan", profile=profile)
    assert path.name == f"{profile}.yaml"
    assert config.k == 2.0
