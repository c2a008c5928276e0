"""Deterministic run directories of each command for the dashboard tests.

Every value, timestamp and file is fixed, so screenshots of the dashboard do not change
between test runs. Runs are finished (a running run would turn stale depending on the host).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from rlo_cli.tui.local import LocalSample

START = 1_709_287_200.0  # 2024-03-01 10:00:00 UTC


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def make_run(runs_dir: Path, dir_name: str, command: str, config: dict[str, Any],
             status: dict[str, Any], metrics: list[dict[str, Any]],
             system: list[dict[str, Any]] | None = None, events: list[str] | None = None) -> Path:
    run_dir = runs_dir / dir_name
    run_dir.mkdir(parents=True)
    document = {"command": command, **config, "environment": {"host": "fixture-host"}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    full_status = {"state": "finished", "command": command, "pid": 1, "host": "fixture-host",
                   **status}
    (run_dir / "status.json").write_text(json.dumps(full_status))
    write_jsonl(run_dir / "metrics.jsonl", metrics)
    write_jsonl(run_dir / "system.jsonl", system or [])
    (run_dir / "events.log").write_text("".join(line + "\n" for line in events or []))
    return run_dir


def system_samples(count: int, start: float, gpus: bool) -> list[dict[str, Any]]:
    samples = []
    for i in range(count):
        sample: dict[str, Any] = {
            "time": start + 5 * i, "cpu_pct": 40 + 30 * math.sin(i / 3), "rss_mb": 1300 + i,
            "host_mem_used_mb": 9000 + 10 * i, "host_mem_total_mb": 24000,
            "host_cpu_pct": 50 + 20 * math.sin(i / 4),
        }
        if gpus:
            sample["gpus"] = [{"index": 0, "name": "NVIDIA H100", "util_pct": 60 + 35 * math.sin(i / 2) ** 2,
                               "mem_used_mb": 30000 + 100 * i, "mem_total_mb": 81559,
                               "temp_c": 55 + i % 7, "power_w": 310 + 5 * i}]
        samples.append(sample)
    return samples


def log_lines(start_clock: str, messages: list[str]) -> list[str]:
    return [f"2024-03-01 {start_clock},{100 + i:03d} INFO rlo_core.fixture: {message}"
            for i, message in enumerate(messages)]


def train_metrics(scale: float = 1.0, epochs: int = 5, steps_per_epoch: int = 40,
                  start: float = START) -> list[dict[str, Any]]:
    """Train records every 5 steps and val/test records per epoch; `scale` shifts the losses."""
    records = []
    for step in range(0, epochs * steps_per_epoch + 1, 5):
        epoch = step / steps_per_epoch
        loss = scale * (2.3 * math.exp(-step / 60) + 0.1 + 0.05 * math.sin(step / 3))
        records.append({"time": start + step, "step": step, "epoch": epoch, "split": "train",
                        "loss": loss, "ce": loss * 0.8, "acc": 1 - loss / 2.5,
                        "lr": 1e-3 * 0.5 * (1 + math.cos(math.pi * step / (epochs * steps_per_epoch)))})
        if step and step % steps_per_epoch == 0:
            val = scale * (2.0 * math.exp(-step / 70) + 0.2)
            records.append({"time": start + step, "step": step, "epoch": epoch, "split": "val",
                            "loss": val, "ce": val * 0.85, "acc": 1 - val / 2.6})
    return records


def make_train_run(runs_dir: Path, name: str = "digits-resnet18-rlo", stamp: str = "20240301-100000",
                   scale: float = 1.0) -> Path:
    return make_run(
        runs_dir, f"{stamp}-train-{name}", "train",
        {"dataset": "digits", "net": "resnet18", "loss": "rlo", "k": 3, "m": 3, "epochs": 5},
        {"started_at": START, "ended_at": START + 754, "updated_at": START + 754, "step": 200,
         "total_steps": 200, "epoch": 5, "total_epochs": 5, "best_metric": 0.9722,
         "best_metric_name": "val_acc"},
        train_metrics(scale),
        system_samples(24, START, gpus=True),
        log_lines("10:00:00", ["Run directory: runs/" + name, "Epoch 1/5: val acc 0.41",
                               "Epoch 5/5: val acc 0.97", "Training finished"]),
    )


def make_finetune_run(runs_dir: Path) -> Path:
    metrics = []
    for step in range(0, 301, 10):
        loss = 3.2 * math.exp(-step / 150) + 1.9
        metrics.append({"time": START + step, "step": step, "epoch": step / 300, "split": "train",
                        "loss": loss, "ce": loss * 0.9, "lr": 2e-4 * min(1.0, step / 30 + 0.01)})
        if step and step % 50 == 0:
            ppl = math.exp(2.9 * math.exp(-step / 200) + 2.2)
            metrics.append({"time": START + step, "step": step, "epoch": step / 300, "split": "eval",
                            "ppl": ppl, "eval_objective": math.log(ppl) * 1.1})
    return make_run(
        runs_dir, "20240302-090000-finetune-gpt2-lora-rlo", "finetune",
        {"model": "gpt2", "method": "lora", "loss": "rlo", "k": 3, "m": 3},
        {"started_at": START + 86400, "ended_at": START + 86400 + 3725, "step": 300,
         "total_steps": 300, "epoch": 1, "total_epochs": 1, "best_metric": 21.37,
         "best_metric_name": "eval_ppl"},
        metrics, system_samples(24, START + 86400, gpus=False),
        log_lines("09:00:00", ["Loaded gpt2 from local weights", "Eval ppl 21.37"]),
    )


def make_quantize_run(runs_dir: Path) -> Path:
    rows = [("fp16", 16, 27.65), ("rtn", 4, 37.21), ("gptq", 4, 31.08), ("rtn", 3, 1200.5),
            ("gptq", 3, 53.9)]
    metrics = [{"time": START + 172800 + i, "step": i, "epoch": None, "split": "eval",
                "method": method, "wbits": wbits, "dataset": "wikitext2", "ppl": ppl}
               for i, (method, wbits, ppl) in enumerate(rows)]
    return make_run(
        runs_dir, "20240303-120000-quantize-opt-125m", "quantize",
        {"model": "opt-125m", "methods": ["rtn", "gptq"], "wbits": [4, 3]},
        {"started_at": START + 172800, "ended_at": START + 172800 + 412, "step": 5,
         "total_steps": 5, "best_metric": 31.08, "best_metric_name": "ppl w4"},
        metrics, [], log_lines("12:00:00", ["Quantizing opt-125m", "Done: 5 results"]),
    )


def make_gan_run(runs_dir: Path) -> Path:
    metrics = []
    for step in range(0, 2001, 50):
        metrics.append({"time": START + 259200 + step, "step": step, "epoch": None, "split": "train",
                        "g_loss": 1.5 + 0.6 * math.sin(step / 200) * math.exp(-step / 1500),
                        "d_loss": 0.7 + 0.3 * math.cos(step / 170) * math.exp(-step / 1500),
                        "r1": 0.05 + 0.02 * math.sin(step / 90)})
        if step and step % 500 == 0:
            metrics.append({"time": START + 259200 + step, "step": step, "epoch": None,
                            "split": "eval", "fid": 120 * math.exp(-step / 900) + 18})
    return make_run(
        runs_dir, "20240304-080000-gan-cifar10-dcgan-rlo", "gan",
        {"dataset": "cifar10", "net": "dcgan", "loss": "rlo", "k": 2},
        {"started_at": START + 259200, "ended_at": START + 259200 + 5400, "step": 2000,
         "total_steps": 2000, "best_metric": 31.2, "best_metric_name": "fid"},
        metrics, system_samples(24, START + 259200, gpus=True),
        log_lines("08:00:00", ["Generator and discriminator built", "FID 31.2 at step 2000"]),
    )


def make_all_runs(runs_dir: Path) -> dict[str, Path]:
    return {
        "train": make_train_run(runs_dir),
        "finetune": make_finetune_run(runs_dir),
        "quantize": make_quantize_run(runs_dir),
        "gan": make_gan_run(runs_dir),
    }


class FakeNvml:
    """An NvmlReader stand-in for a host without a GPU."""

    available = False
    reason = "NVML is unavailable (driver not loaded); no NVIDIA driver on this host?"

    def sample(self) -> list[dict[str, Any]]:
        return []


class FixedSampler:
    """A LocalSampler stand-in that always reports the same machine state."""

    def sample(self) -> LocalSample:
        return LocalSample(host="testhost", cpu_pct=12.0, mem_used_mb=8192, mem_total_mb=16384,
                           gpus=(), gpu_reason=FakeNvml.reason)
