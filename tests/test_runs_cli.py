"""`rlo runs list|show|compare|plot|export` and the plot and summary helpers behind them."""

from __future__ import annotations

import csv
import io
import json
import math
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.config import to_dict
from rlo_core.errors import ConfigError
from rlo_core.runs import Run
from rlo_core.runs.plots import choose_metric, loss_label, plot_runs, xy_series
from rlo_core.runs.status import write_status
from rlo_core.runs.summary import best_values, final_metrics, summarize_run
from rlo_core.train.config import TrainConfig

STEPS_PER_EPOCH = 8
EPOCHS = 4


def train_run(runs_dir: Path, name: str, *, loss: str, k: float, m: float, lr: float,
              fail_at_epoch: int | None = None) -> Path:
    """A finished (or failed) digits run with train records per step and val records per epoch."""
    config = to_dict(TrainConfig(dataset="digits", net="mlp", loss=loss, k=k, m=m, lr=lr,
                                 epochs=EPOCHS, batch_size=64))
    run = Run.create("train", name, config, runs_dir=runs_dir, system_interval=60)
    total = EPOCHS * STEPS_PER_EPOCH
    try:
        with run:
            run.update(total_steps=total, total_epochs=EPOCHS)
            for epoch in range(EPOCHS):
                if epoch == fail_at_epoch:
                    raise RuntimeError("loss became NaN")
                for batch in range(STEPS_PER_EPOCH):
                    step = epoch * STEPS_PER_EPOCH + batch + 1
                    run.log_metrics(step=step, split="train", epoch=step / STEPS_PER_EPOCH,
                                    loss=k * math.exp(-step / (10 * k)), ce=2.3 * math.exp(-step / 12),
                                    acc=1 - 0.9 * math.exp(-step / (6 * m)), lr=lr)
                val_acc = 1 - 0.9 * math.exp(-(epoch + 1) / m)
                run.log_metrics(step=step, split="val", epoch=epoch + 1, acc=val_acc,
                                ce=2.3 * math.exp(-(epoch + 1) / 2), loss=k * math.exp(-step / 20))
                run.update(step=step, epoch=epoch + 1, best_metric=val_acc,
                           best_metric_name="val acc")
    except RuntimeError:
        pass
    return run.dir


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    train_run(folder, "digits-mlp-rlo-k3-m3", loss="rlo", k=3.0, m=3.0, lr=1e-3)
    train_run(folder, "digits-mlp-rlo-k8-m10", loss="rlo", k=8.0, m=10.0, lr=1e-4)
    train_run(folder, "digits-mlp-ce", loss="ce", k=3.0, m=3.0, lr=1e-3, fail_at_epoch=2)
    crashed = Run.create("train", "digits-crashed", {"loss": "rlo", "k": 3.0, "m": 3.0},
                         runs_dir=folder)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    write_status(crashed.dir, {"state": "running", "pid": process.pid,
                               "host": socket.gethostname(), "started_at": time.time() - 30,
                               "updated_at": time.time(), "step": 3, "total_steps": 10})
    return folder


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")


def invoke(runs_dir: Path, *args: str):
    return CliRunner().invoke(app, ["runs", *args, "--runs-dir", str(runs_dir)])


def run_dir(runs_dir: Path, name: str) -> Path:
    return next(path for path in runs_dir.iterdir() if path.name.endswith(f"-{name}"))


def table_row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if f" {name} " in line)


# -- list ---------------------------------------------------------------------------------

def test_list_shows_every_run(runs_dir):
    result = invoke(runs_dir, "list")
    assert result.exit_code == 0, result.output
    for name in ("digits-mlp-rlo-k3-m3", "digits-mlp-rlo-k8-m10", "digits-mlp-ce",
                 "digits-crashed"):
        assert name in result.stdout


def test_list_shows_states(runs_dir):
    output = invoke(runs_dir, "list").stdout
    assert "finished" in table_row(output, "digits-mlp-rlo-k3-m3")
    assert "failed" in table_row(output, "digits-mlp-ce")
    assert "stale" in table_row(output, "digits-crashed")


def test_list_shows_progress_and_best(runs_dir):
    row = table_row(invoke(runs_dir, "list").stdout, "digits-mlp-ce")
    assert "16/32 (50%)" in row
    assert f"val acc {1 - 0.9 * math.exp(-2 / 3):.4f}" in row


def test_list_empty_folder(tmp_path):
    result = invoke(tmp_path / "none", "list")
    assert result.exit_code == 0
    assert "No runs under" in result.stderr


# -- show ---------------------------------------------------------------------------------

def test_show_prints_config_and_final_metrics(runs_dir):
    result = invoke(runs_dir, "show", "digits-mlp-rlo-k8-m10")
    assert result.exit_code == 0, result.output
    assert "k: 8.0" in result.stdout
    assert "m: 10.0" in result.stdout
    assert "Final metrics" in result.stdout
    final_acc = 1 - 0.9 * math.exp(-EPOCHS / 10)
    assert f"{final_acc:.4f}" in table_row(result.stdout, "val")


def test_show_failed_run_prints_error(runs_dir):
    result = invoke(runs_dir, "show", "digits-mlp-ce")
    assert "loss became NaN" in result.stdout


def test_show_last(runs_dir):
    result = invoke(runs_dir, "show", "last")
    assert result.exit_code == 0, result.output
    assert "digits-crashed" in result.stdout


def test_show_unknown_run_fails(runs_dir):
    result = invoke(runs_dir, "show", "no-such-run")
    assert result.exit_code == 2
    assert "'no-such-run' was not found" in result.stderr


# -- compare ------------------------------------------------------------------------------

def test_compare_shows_differing_options(runs_dir):
    result = invoke(runs_dir, "compare", "digits-mlp-rlo-k3-m3", "digits-mlp-rlo-k8-m10")
    assert result.exit_code == 0, result.output
    k_row = table_row(result.stdout, "k")
    assert "3" in k_row
    assert "8" in k_row
    assert "lr" in result.stdout
    assert "dataset" not in result.stdout  # the same in both runs


def test_compare_shows_best_val_acc(runs_dir):
    result = invoke(runs_dir, "compare", "digits-mlp-rlo-k3-m3", "digits-mlp-rlo-k8-m10")
    row = table_row(result.stdout, "best val acc (max)")
    assert f"{1 - 0.9 * math.exp(-EPOCHS / 3):.4f}" in row
    assert f"{1 - 0.9 * math.exp(-EPOCHS / 10):.4f}" in row


def test_compare_single_metric(runs_dir):
    result = invoke(runs_dir, "compare", "digits-mlp-rlo-k3-m3", "digits-mlp-ce", "--metric", "ce")
    assert result.exit_code == 0, result.output
    assert "best val ce (min)" in result.stdout
    assert "final val ce" in result.stdout
    assert "final val acc" not in result.stdout


def test_compare_unknown_metric_fails(runs_dir):
    result = invoke(runs_dir, "compare", "digits-mlp-rlo-k3-m3", "--metric", "bleu")
    assert result.exit_code == 2
    assert "'bleu'" in result.stderr
    assert "acc" in result.stderr


# -- plot ---------------------------------------------------------------------------------

def test_plot_writes_png_of_expected_size(runs_dir, tmp_path):
    from PIL import Image

    out = tmp_path / "compare.png"
    result = invoke(runs_dir, "plot", "digits-mlp-rlo-k3-m3", "digits-mlp-rlo-k8-m10",
                    "digits-mlp-ce", "--metric", "loss", "-o", str(out))
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (900, 550)


def test_plot_default_output_in_run_plots_dir(runs_dir):
    result = invoke(runs_dir, "plot", "digits-mlp-rlo-k3-m3", "--x", "epoch", "--log")
    assert result.exit_code == 0, result.output
    assert (run_dir(runs_dir, "digits-mlp-rlo-k3-m3") / "plots" / "acc-by-epoch.png").is_file()


def test_plot_unknown_metric_fails(runs_dir, tmp_path):
    result = invoke(runs_dir, "plot", "digits-mlp-ce", "--metric", "fid", "-o",
                    str(tmp_path / "x.png"))
    assert result.exit_code == 2
    assert "'fid'" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_plot_invalid_x_axis_fails(runs_dir, tmp_path):
    result = invoke(runs_dir, "plot", "digits-mlp-ce", "--x", "time", "-o", str(tmp_path / "x.png"))
    assert result.exit_code == 2
    assert "Invalid x axis 'time'" in result.stderr


def test_plot_runs_one_split(runs_dir, tmp_path):
    from PIL import Image

    out = plot_runs([run_dir(runs_dir, "digits-mlp-rlo-k3-m3")], "acc", tmp_path / "val.png",
                    split="val")
    with Image.open(out) as image:
        assert image.size == (900, 550)


def test_plot_runs_missing_split_fails(runs_dir, tmp_path):
    with pytest.raises(ConfigError) as info:
        plot_runs([run_dir(runs_dir, "digits-mlp-ce")], "acc", tmp_path / "x.png", split="test")
    assert "no points for split 'test'" in str(info.value)


def test_plot_runs_without_metrics_fails(runs_dir, tmp_path):
    with pytest.raises(ConfigError) as info:
        plot_runs([run_dir(runs_dir, "digits-crashed")], None, tmp_path / "x.png")
    assert "No metric has been logged" in str(info.value)


def test_choose_metric_per_command():
    assert choose_metric("train", ["loss", "acc", "lr"]) == "acc"
    assert choose_metric("finetune", ["loss", "ppl"]) == "ppl"
    assert choose_metric("quantize", ["ppl", "bits"]) == "ppl"
    assert choose_metric("gan", ["g_loss", "d_loss", "fid"]) == "fid"
    assert choose_metric("gan", ["d_loss", "g_loss"]) == "g_loss"
    assert choose_metric("train", ["loss", "lr"]) == "loss"
    assert choose_metric("other", ["bleu"]) == "bleu"
    assert choose_metric("train", []) is None


def test_loss_label_reads_k_and_m():
    assert loss_label({"loss": "rlo", "k": 3.0, "m": 3.0}) == "rlo k=3 m=3"
    assert loss_label({"loss": "rlo-convex", "k": 8.0, "m": 10.0}) == "rlo-convex k=8"
    assert loss_label({"loss": "ce", "k": 3.0, "m": 3.0}) == "ce"
    assert loss_label({}) == ""


def test_xy_series_averages_one_epoch():
    records = [{"split": "train", "epoch": 1, "loss": 1.0}, {"split": "train", "epoch": 1, "loss": 3.0},
               {"split": "val", "epoch": 1, "loss": 9.0}, {"split": "train", "epoch": 2, "loss": 0.5}]
    assert xy_series(records, "loss", "train", "epoch") == ([1.0, 2.0], [2.0, 0.5])


# -- export -------------------------------------------------------------------------------

def test_export_csv_to_stdout(runs_dir):
    result = invoke(runs_dir, "export", "digits-mlp-rlo-k3-m3", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == EPOCHS * (STEPS_PER_EPOCH + 1)
    assert list(rows[0])[:4] == ["time", "step", "epoch", "split"]
    assert rows[-1]["split"] == "val"
    assert rows[-1]["step"] == str(EPOCHS * STEPS_PER_EPOCH)


def test_export_json_to_file(runs_dir, tmp_path):
    out = tmp_path / "run.json"
    result = invoke(runs_dir, "export", "digits-mlp-rlo-k8-m10", "--format", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["command"] == "train"
    assert document["config"]["k"] == 8.0
    assert document["status"]["state"] == "finished"
    assert len(document["metrics"]) == EPOCHS * (STEPS_PER_EPOCH + 1)


def test_export_one_split(runs_dir):
    result = invoke(runs_dir, "export", "digits-mlp-ce", "--split", "val")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["split"] for row in rows] == ["val", "val"]


def test_export_invalid_format_fails(runs_dir):
    result = invoke(runs_dir, "export", "digits-mlp-ce", "--format", "xml")
    assert result.exit_code == 2
    assert "Invalid --format 'xml'" in result.stderr


# -- summaries ----------------------------------------------------------------------------

def test_summary_of_failed_run(runs_dir):
    summary = summarize_run(run_dir(runs_dir, "digits-mlp-ce"))
    assert summary.state == "failed"
    assert summary.command == "train"
    assert summary.name == "digits-mlp-ce"
    assert summary.progress == 0.5
    assert summary.final["val"]["acc"] == pytest.approx(1 - 0.9 * math.exp(-2 / 3))


def test_summary_derives_best_without_status(tmp_path):
    run = Run.create("finetune", "gpt2-rlo", {"loss": "rlo"}, runs_dir=tmp_path)
    (run.dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 10, "split": "val", "ppl": 40.0}, {"step": 20, "split": "val", "ppl": 31.5},
        {"step": 30, "split": "val", "ppl": 33.0}, {"step": 30, "split": "train", "ppl": 20.0},
    ]))
    summary = summarize_run(run.dir)
    assert summary.best_metric_name == "val ppl"
    assert summary.best_metric == 31.5


def test_best_values_and_final_metrics():
    records = [
        {"step": 1, "split": "val", "acc": 0.5, "loss": 2.0},
        {"step": 2, "split": "val", "acc": 0.7, "loss": 2.5},
        {"step": 3, "split": "val", "acc": 0.6, "loss": 1.0},
    ]
    assert best_values(records, "acc") == {"val": 0.7}
    assert best_values(records, "loss") == {"val": 1.0}
    assert final_metrics(records) == {"val": {"acc": 0.6, "loss": 1.0}}


def test_config_yaml_records_environment(runs_dir):
    config = yaml.safe_load((run_dir(runs_dir, "digits-mlp-ce") / "config.yaml").read_text())
    assert config["command"] == "train"
    assert "rlo_version" in config["environment"]
