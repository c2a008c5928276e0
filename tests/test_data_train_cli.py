"""`rlo train` end to end on an imagefolder:PATH fixture, and clear errors for absent data."""

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.runs import read_jsonl

runner = CliRunner()


def write_pets(root: Path) -> Path:
    for split in ("train", "val"):
        for name, color in (("cat", (200, 0, 0)), ("dog", (0, 200, 0))):
            for i in range(3):
                path = root / split / name / f"{name}{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (24, 24), color).save(path)
    return root


def test_train_on_imagefolder_two_steps(tmp_path):
    root = write_pets(tmp_path / "pets")
    result = runner.invoke(app, [
        "train", "--dataset", f"imagefolder:{root}", "--net", "vit_tiny", "--dim-head", "96",
        "--patch", "8", "--max-steps", "2", "--epochs", "1", "--device", "cpu",
        "--batch-size", "4", "--workers", "0", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (run_dir,) = list((tmp_path / "runs").iterdir())
    records = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if r["split"] == "train"][-1] == 2
    assert [r["split"] for r in records].count("test") == 1


def test_train_without_cifar100_names_fix(tmp_path):
    result = runner.invoke(app, ["train", "--dataset", "cifar100", "--net", "Swin", "--k", "8",
                                 "--m", "10", "--data-dir", str(tmp_path / "data"),
                                 "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "CIFAR-100 not found" in result.output
    assert "--download" in result.output
    assert "Traceback" not in result.output
