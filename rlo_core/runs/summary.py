"""Run summaries for tables: state, progress, best metric, timing and final metrics."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from rlo_core.runs.discovery import RUN_DIR_PATTERN, read_run_config, run_command, run_name
from rlo_core.runs.metrics import read_jsonl
from rlo_core.runs.status import effective_state, read_status

# Record fields that locate a record rather than measure something.
RECORD_FIELDS = ("time", "step", "epoch", "split")

# Metrics to show first for each command, in order of preference.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "train": ("acc", "loss"),
    "finetune": ("ppl", "loss"),
    "quantize": ("ppl", "loss"),
    "gan": ("fid", "g_loss"),
}

# Metrics where a larger value is better; every other metric (loss, ce, ppl, fid, ...) is
# better when smaller.
HIGHER_IS_BETTER = frozenset({"acc", "accuracy", "top1", "top5", "acc1", "acc5", "f1", "auc",
                              "inception_score", "is", "precision", "recall"})

EVAL_SPLITS = ("val", "eval", "test")


def metric_goal(name: str) -> str:
    """Return "max" for metrics where larger is better (accuracy, F1), else "min"."""
    return "max" if name in HIGHER_IS_BETTER or name.endswith("_acc") else "min"


def metric_names(records: Iterable[dict[str, Any]]) -> list[str]:
    """Numeric metric keys that occur in `records`, in order of first appearance."""
    names: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key in RECORD_FIELDS or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                names.setdefault(key, None)
    return list(names)


def final_metrics(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return the last logged value of each metric, per split: `{split: {metric: value}}`."""
    final: dict[str, dict[str, float]] = {}
    for record in records:
        split = str(record.get("split") or "train")
        for key, value in record.items():
            if key in RECORD_FIELDS or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                final.setdefault(split, {})[key] = value
    return final


def best_values(records: Iterable[dict[str, Any]], metric: str) -> dict[str, float]:
    """Return the best value of `metric` per split (max or min, see `metric_goal`)."""
    pick = max if metric_goal(metric) == "max" else min
    best: dict[str, float] = {}
    for record in records:
        value = record.get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            continue
        split = str(record.get("split") or "train")
        best[split] = pick(best[split], value) if split in best else value
    return best


def derive_best(records: list[dict[str, Any]], command: str) -> tuple[str, float] | None:
    """Best evaluation value of the command's default metric, for runs whose status lacks one."""
    for metric in DEFAULT_METRICS.get(command, ("loss",)):
        best = best_values(records, metric)
        for split in EVAL_SPLITS:
            if split in best:
                return f"{split} {metric}", best[split]
    return None


@dataclass
class RunSummary:
    """Summary of one run directory, as the run tables show it."""

    path: Path
    name: str
    command: str
    state: str
    status: dict[str, Any]
    config: dict[str, Any]
    started_at: float | None
    duration_s: float | None
    best_metric_name: str | None = None
    best_metric: float | None = None
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def progress(self) -> float | None:
        """Fraction done in [0, 1] from steps (or epochs), or None when the total is unknown."""
        for done_key, total_key in (("step", "total_steps"), ("epoch", "total_epochs")):
            done, total = self.status.get(done_key), self.status.get(total_key)
            if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
                return max(0.0, min(1.0, done / total))
        return None

    def progress_text(self) -> str:
        step, total = self.status.get("step"), self.status.get("total_steps")
        if isinstance(step, int) and isinstance(total, int) and total > 0:
            return f"{step}/{total} ({100 * step / total:.0f}%)"
        epoch, epochs = self.status.get("epoch"), self.status.get("total_epochs")
        if isinstance(epoch, (int, float)) and isinstance(epochs, (int, float)) and epochs > 0:
            return f"epoch {epoch:g}/{epochs:g}"
        if isinstance(step, int):
            return f"step {step}"
        return "-"

    def best_text(self) -> str:
        if self.best_metric is None:
            return "-"
        label = f"{self.best_metric_name} " if self.best_metric_name else ""
        return f"{label}{format_value(self.best_metric)}"


def format_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4f}"


def format_time(timestamp: float | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """Format a Unix time in the local time zone with a `strftime` pattern."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime(pattern)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def _started_at(run_dir: Path, status: dict[str, Any]) -> float | None:
    started = status.get("started_at")
    if isinstance(started, (int, float)):
        return float(started)
    match = RUN_DIR_PATTERN.match(run_dir.name)
    if match:
        return datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S").timestamp()
    return None


def _duration(status: dict[str, Any], state: str, started: float | None, now: float) -> float | None:
    """Seconds from the first start to the end, to now while running, or to the last heartbeat
    of a stale run. The time between an interruption and a resume is included."""
    if started is None:
        return None
    ended = status.get("ended_at")
    if isinstance(ended, (int, float)):
        return ended - started
    if state == "running":
        return now - started
    updated = status.get("updated_at")
    return updated - started if isinstance(updated, (int, float)) else None


def summarize_run(run_dir: Path, *, read_metrics: bool = True,
                  now: float | None = None) -> RunSummary:
    """Summarize a run directory; `read_metrics=False` skips metrics.jsonl (fast listing)."""
    run_dir = Path(run_dir)
    now = time.time() if now is None else now
    status = read_status(run_dir)
    state = effective_state(status, now=now)
    command = str(status.get("command") or run_command(run_dir))
    started = _started_at(run_dir, status)
    summary = RunSummary(
        path=run_dir, name=run_name(run_dir), command=command, state=state, status=status,
        config=read_run_config(run_dir), started_at=started,
        duration_s=_duration(status, state, started, now),
    )
    best = status.get("best_metric")
    if isinstance(best, (int, float)) and not isinstance(best, bool):
        summary.best_metric = float(best)
        summary.best_metric_name = status.get("best_metric_name")
    if read_metrics:
        summary.records = read_jsonl(run_dir / "metrics.jsonl")
        summary.final = final_metrics(summary.records)
        if summary.best_metric is None:
            derived = derive_best(summary.records, command)
            if derived is not None:
                summary.best_metric_name, summary.best_metric = derived
    return summary


def summarize_runs(run_dirs: Iterable[Path], *, read_metrics: bool = True,
                   now: float | None = None) -> list[RunSummary]:
    return [summarize_run(path, read_metrics=read_metrics, now=now) for path in run_dirs]
