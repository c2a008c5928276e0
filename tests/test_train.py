"""`rlo train` end to end on the offline digits data, resume, interrupts and bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.errors import CheckpointError, NonFiniteLossError, TrainingInterrupted
from rlo_core.runs import read_jsonl
from rlo_core.train.callbacks import Callback
from rlo_core.train.config import TrainConfig
from rlo_core.train.pipeline import resume_train, run_train

runner = CliRunner()

TINY = ["--dataset", "digits", "--net", "res18", "--image-size", "8", "--batch-size", "128",
        "--epochs", "1", "--device", "cpu", "--workers", "0", "--lr", "3e-3"]


def tiny_config(tmp_path, **overrides) -> TrainConfig:
    options = dict(dataset="digits", net="res18", image_size=8, batch_size=128, epochs=2,
                   device="cpu", workers=0, lr=3e-3, log_every=1, runs_dir=str(tmp_path / "runs"))
    options.update(overrides)
    return TrainConfig(**options)


@pytest.mark.parametrize("loss", ["ce", "focal", "rlo", "rlo-convex"])
def test_cli_trains_each_loss(loss, tmp_path):
    result = runner.invoke(app, ["train", *TINY, "--loss", loss, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "final test accuracy" in result.output
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    records = read_jsonl(run_dir / "metrics.jsonl")
    test_records = [r for r in records if r["split"] == "test"]
    assert len(test_records) == 1
    assert {"loss", "ce", "acc"} <= test_records[0].keys()
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished"


def test_quickstart_style_run_learns(tmp_path):
    result = run_train(tiny_config(tmp_path, epochs=3, image_size=16, batch_size=64))
    assert result.final_acc > 0.8
    assert result.epochs_done == 3


class InterruptAt(Callback):
    """Send a real SIGINT to this process after a given optimizer step."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, metrics):
        if trainer.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupt_and_resume_matches_uninterrupted(tmp_path):
    reference = run_train(tiny_config(tmp_path, name="reference"))
    with pytest.raises(TrainingInterrupted, match="--resume"):
        run_train(tiny_config(tmp_path, name="interrupted"), callbacks=[InterruptAt(step=15)])
    (run_dir,) = (tmp_path / "runs").glob("*interrupted*")
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted"

    resumed = resume_train(str(run_dir))
    assert resumed.steps == reference.steps
    assert resumed.final_acc == pytest.approx(reference.final_acc, abs=1e-9)
    assert resumed.final_ce == pytest.approx(reference.final_ce, rel=1e-5)
    steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "train"]
    assert steps == list(range(1, reference.steps + 1))


def test_resume_last_with_more_epochs(tmp_path):
    first = run_train(tiny_config(tmp_path, epochs=1))
    extended = resume_train("last", overrides={"epochs": 2}, runs_dir=str(tmp_path / "runs"))
    assert extended.run_dir == first.run_dir
    assert extended.epochs_done == 2
    assert extended.steps == 2 * first.steps


def test_corrupt_checkpoint_is_clear_error(tmp_path):
    result = run_train(tiny_config(tmp_path, epochs=1))
    (result.run_dir / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        resume_train(str(result.run_dir))


class NanLoss(torch.nn.Module):
    def __init__(self, bad_call: int):
        super().__init__()
        self.calls, self.bad_call = 0, bad_call

    def forward(self, logits, target):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(logits, target)
        return loss * float("nan") if self.calls == self.bad_call else loss


def test_nan_loss_stops_with_step(tmp_path, monkeypatch):
    import rlo_core.losses as losses

    # 12 training calls and 3 evaluation calls in epoch 1, so call 17 is step 14.
    monkeypatch.setattr(losses, "build_loss", lambda *a, **k: NanLoss(bad_call=17))
    with pytest.raises(NonFiniteLossError, match="step 14"):
        run_train(tiny_config(tmp_path, epochs=2))
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "checkpoints" / "last.pt").is_file()  # epoch 1's checkpoint is kept
    assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--epochs", "-1"], "--epochs must be a positive integer"),
    (["--k", "0"], "--k must be > 0"),
    (["--m", "-2"], "--m must be > 0"),
    (["--net", "resnet181"], "Unknown net 'resnet181'"),
    (["--loss", "rloo"], "Did you mean 'rlo'"),
    (["--dataset", "digitz"], "Unknown dataset 'digitz'"),
    (["--profile", "no-such-profile"], "Profile 'no-such-profile' was not found"),
    (["--resume", "no-such-run"], "Run 'no-such-run' was not found"),
])
def test_bad_input_gives_clear_error(flags, message, tmp_path):
    result = runner.invoke(app, ["train", *TINY, "--runs-dir", str(tmp_path), *flags])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_ctrl_c_exits_130_with_hint(tmp_path):
    command = [sys.executable, "-m", "rlo_cli", "train", *TINY, "--epochs", "5",
               "--runs-dir", str(tmp_path), "--log-every", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "COLUMNS": "200"})
    deadline = time.time() + 120
    metrics = None
    while time.time() < deadline:
        found = list(Path(tmp_path).glob("*/metrics.jsonl"))
        if found and found[0].read_text().count("\n") >= 2:
            metrics = found[0]
            break
        time.sleep(0.2)
    assert metrics is not None, "the run wrote no metrics in time"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "--resume" in output
    assert (metrics.parent / "checkpoints" / "last.pt").is_file()
