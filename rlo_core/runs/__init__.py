"""Run directories shared by every command: config, metrics, status, checkpoints, plots."""

from rlo_core.runs.discovery import find_runs, resolve_run
from rlo_core.runs.metrics import JsonlTail, MetricsWriter, read_jsonl
from rlo_core.runs.run import Run, default_runs_dir
from rlo_core.runs.status import effective_state, read_status

__all__ = [
    "JsonlTail", "MetricsWriter", "Run", "default_runs_dir", "effective_state", "find_runs",
    "read_jsonl", "read_status", "resolve_run",
]
