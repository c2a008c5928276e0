"""Disk side of the dashboard: lists run directories and tails their files by byte offset.

A `RunsReader` is used from one worker thread at a time and never touches the UI. It returns
plain data (`RunSummary`, `RunDelta`) that the worker posts to the app as messages.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlo_cli.tui.history import MetricChunk, parse_metrics
from rlo_core.runs import JsonlTail, effective_state, find_runs, read_status
from rlo_core.runs.discovery import is_run_dir, run_name

log = logging.getLogger(__name__)

# The first read of events.log starts this many bytes before its end: the panel shows a tail.
EVENTS_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class RunSummary:
    """One row of the run list, from config.yaml, status.json and the directory name."""

    path: Path
    name: str
    command: str
    state: str
    status: dict[str, Any]


@dataclass
class RunDelta:
    """The changes to one run's files since the previous read."""

    path: Path
    metrics: MetricChunk = field(default_factory=MetricChunk)
    metrics_reset: bool = False
    bad_metric_lines: int = 0  # unreadable lines skipped in metrics.jsonl so far
    bad_lines_changed: bool = False
    system: list[dict[str, Any]] = field(default_factory=list)
    system_reset: bool = False
    events: list[str] = field(default_factory=list)
    events_reset: bool = False

    @property
    def empty(self) -> bool:
        return not (self.metrics.records or self.metrics_reset or self.bad_lines_changed or self.system
                    or self.system_reset or self.events or self.events_reset)


def default_run(summaries: list[RunSummary], preferred: Path | None = None) -> Path | None:
    """Return the run to select first: `preferred` if listed, else the newest running run, else
    the newest run."""
    paths = [summary.path for summary in summaries]
    if preferred in paths:
        return preferred
    running = [summary.path for summary in summaries if summary.state == "running"]
    if running:
        return running[-1]
    return paths[-1] if paths else None


class TextTail:
    """Incremental reader of a text log: returns new complete lines, keeps a partial last line."""

    def __init__(self, path: Path, start_tail_bytes: int = EVENTS_TAIL_BYTES):
        self.path = Path(path)
        self.offset: int | None = None
        self.start_tail_bytes = start_tail_bytes
        self._inode: int | None = None

    def read_new(self) -> tuple[list[str], bool]:
        """Return the new lines and whether the file was replaced or truncated since last time."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return [], False
        reset = False
        if self.offset is not None and (stat.st_size < self.offset or stat.st_ino != self._inode):
            self.offset, reset = None, True
        self._inode = stat.st_ino
        skip_first = False
        if self.offset is None:
            self.offset = max(0, stat.st_size - self.start_tail_bytes)
            skip_first = self.offset > 0  # the first line read would start mid-line
        if stat.st_size == self.offset:
            return [], reset
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(stat.st_size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return [], reset
        self.offset += end + 1
        lines = chunk[:end].decode("utf-8", errors="replace").split("\n")
        return (lines[1:] if skip_first else lines), reset


class JsonlFollower:
    """A JsonlTail that also reports when the file was truncated or replaced."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tail = JsonlTail(self.path)
        self._inode: int | None = None

    def read_new(self) -> tuple[list[dict[str, Any]], bool]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return [], False
        reset = False
        if self._inode is not None and (stat.st_ino != self._inode
                                        or stat.st_size < self.tail.offset):
            self.tail = JsonlTail(self.path)
            reset = True
        self._inode = stat.st_ino
        return self.tail.read_new(), reset


class RunFiles:
    """The followed files of one run directory."""

    def __init__(self, path: Path):
        self.path = path
        self.metrics = JsonlFollower(path / "metrics.jsonl")
        self.system = JsonlFollower(path / "system.jsonl")
        self.events = TextTail(path / "events.log")
        self._bad_lines_reported = 0
        self._records = 0  # metric records read since the file was last truncated or replaced

    def read(self) -> RunDelta:
        delta = RunDelta(self.path)
        try:
            records, delta.metrics_reset = self.metrics.read_new()
            if delta.metrics_reset:
                self._records = 0
            delta.metrics = parse_metrics(records, self._records)
            self._records += len(records)
            delta.system, delta.system_reset = self.system.read_new()
            delta.events, delta.events_reset = self.events.read_new()
        except OSError as error:  # deleted or unreadable between stat and open
            log.debug("Could not read files of %s: %s", self.path, error)
        delta.bad_metric_lines = self.metrics.tail.bad_lines
        delta.bad_lines_changed = delta.bad_metric_lines != self._bad_lines_reported
        self._bad_lines_reported = delta.bad_metric_lines
        return delta


class RunsReader:
    """Lists the runs to show and reads new data from the followed ones.

    With `runs` given, only those run directories are listed; otherwise every run under
    `runs_dir`, so runs created later appear and deleted ones disappear.
    """

    def __init__(self, runs_dir: Path, runs: list[Path] | None = None):
        self.runs_dir = Path(runs_dir)
        self.explicit = [Path(p) for p in runs] if runs else None
        self._status_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._command_cache: dict[Path, str] = {}
        self._files: dict[Path, RunFiles] = {}
        self._reported: set[Path] = set()

    def _list_dirs(self) -> list[Path]:
        if self.explicit is not None:
            return [p for p in self.explicit if is_run_dir(p)]
        try:
            return find_runs(self.runs_dir)
        except OSError as error:
            log.debug("Could not list %s: %s", self.runs_dir, error)
            return []

    def _status(self, path: Path) -> dict[str, Any]:
        """Read status.json again only when its modification time or size changed."""
        try:
            stat = os.stat(path / "status.json")
            key = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (0, 0)
        cached = self._status_cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            status = read_status(path)
        except ValueError as error:  # bytes that are not UTF-8
            log.debug("Could not read %s/status.json: %s", path, error)
            status = {"state": "unknown"}
        self._status_cache[path] = (key, status)
        return status

    def _command(self, path: Path) -> str:
        if path not in self._command_cache:
            command = "unknown"
            try:
                config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
                if isinstance(config, dict) and config.get("command"):
                    command = str(config["command"])
            except (OSError, yaml.YAMLError) as error:
                log.debug("Could not read %s/config.yaml: %s", path, error)
            self._command_cache[path] = command
        return self._command_cache[path]

    def scan(self, now: float | None = None) -> list[RunSummary]:
        now = time.time() if now is None else now
        summaries = []
        paths = self._list_dirs()
        for path in paths:
            status = self._status(path)
            command = self._command(path)
            summaries.append(RunSummary(path=path, name=run_name(path), command=command,
                                        state=str(effective_state(status, now)), status=status))
        for removed in set(self._status_cache) - set(paths):
            self._status_cache.pop(removed, None)
            self._command_cache.pop(removed, None)
            self._files.pop(removed, None)
            self._reported.discard(removed)
        return summaries

    def read(self, paths: list[Path]) -> list[RunDelta]:
        """Read what was appended to the files of `paths` since the previous call.

        The first read of a run always returns a delta, even an empty one, so the app can tell
        a run without metrics from one not read yet.
        """
        deltas = []
        for path in paths:
            files = self._files.get(path)
            if files is None:
                files = self._files[path] = RunFiles(path)
            delta = files.read()
            if not delta.empty or path not in self._reported:
                deltas.append(delta)
                self._reported.add(path)
        return deltas
