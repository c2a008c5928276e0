"""A run directory: resolved config, metrics, system metrics, heartbeat status, checkpoints, log.

Layout of `<runs_dir>/<YYYYmmdd-HHMMSS>-<command>-<name>/`:

- `config.yaml`    resolved configuration plus an `environment:` section (versions, host)
- `metrics.jsonl`  one JSON object per line: time, step, epoch, split and metric values
- `system.jsonl`   CPU, memory and GPU samples from a background thread
- `status.json`    state, pid, host, progress and best metric, refreshed as a heartbeat
- `checkpoints/`   `last` and `best` checkpoints, written atomically
- `events.log`     the command's log
- `plots/`         PNG plots
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import yaml

import rlo_core
from rlo_core.runs.metrics import MetricsWriter, truncate_after_step
from rlo_core.runs.status import read_status, write_status
from rlo_core.runs.system import SystemMonitor

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 5.0


def default_runs_dir() -> Path:
    return Path(os.environ.get("RLO_RUNS_DIR", "runs"))


def slugify(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text).strip("-") or "run"


def environment_info() -> dict[str, Any]:
    """Versions and host recorded beside every resolved configuration."""
    info: dict[str, Any] = {"rlo_version": rlo_core.__version__, "host": socket.gethostname()}
    try:
        import torch

        info["torch_version"] = str(torch.__version__)
        info["cuda_version"] = str(torch.version.cuda) if torch.version.cuda else None
        info["cuda_available"] = torch.cuda.is_available()
    except ImportError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


class Run:
    """A run directory and the writers a running command uses.

    Use as a context manager: entering starts the heartbeat, the system monitor and the log
    file; leaving marks the run finished, failed or interrupted. With `active=False` (ranks
    other than 0 of a distributed job) nothing is written.
    """

    def __init__(self, run_dir: Path, command: str, config: dict[str, Any], *, active: bool = True,
                 system_interval: float = 5.0):
        self.dir = Path(run_dir)
        self.command = command
        self.config = config
        self.active = active
        self.system_interval = system_interval
        self.status: dict[str, Any] = {}
        self.metrics: MetricsWriter | None = None
        self._lock = threading.Lock()
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._monitor: SystemMonitor | None = None
        self._log_handler: logging.Handler | None = None

    # -- creation -----------------------------------------------------------------------

    @classmethod
    def create(cls, command: str, name: str, config: dict[str, Any], *,
               runs_dir: Path | None = None, active: bool = True, **kwargs: Any) -> "Run":
        """Create `<runs_dir>/<timestamp>-<command>-<name>/` and write its config.yaml."""
        runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = runs_dir / f"{stamp}-{command}-{slugify(name)}"
        run_dir, suffix = base, 2
        while active and run_dir.exists():
            run_dir = base.with_name(f"{base.name}-{suffix}")
            suffix += 1
        run = cls(run_dir, command, config, active=active, **kwargs)
        if active:
            run_dir.mkdir(parents=True)
            run.write_config()
        return run

    @classmethod
    def open(cls, run_dir: Path, *, active: bool = True, **kwargs: Any) -> "Run":
        """Open an existing run directory to continue it (resume)."""
        run_dir = Path(run_dir)
        saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        command = saved.pop("command", "unknown")
        saved.pop("environment", None)
        run = cls(run_dir, command, saved, active=active, **kwargs)
        run.status = read_status(run_dir)
        return run

    def write_config(self) -> None:
        from rlo_core import atomic

        document = {"command": self.command, **self.config, "environment": environment_info()}
        atomic.write_text(self.dir / "config.yaml", yaml.safe_dump(document, sort_keys=False))

    # -- paths ----------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def plots_dir(self) -> Path:
        return self.dir / "plots"

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> "Run":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        from rlo_core.errors import TrainingInterrupted

        if exc_type is None:
            self.finish("finished")
        elif issubclass(exc_type, (KeyboardInterrupt, TrainingInterrupted)):
            self.finish("interrupted", error=str(exc) or "interrupted by the user")
        else:
            self.finish("failed", error=f"{exc_type.__name__}: {exc}")

    def start(self) -> None:
        if not self.active:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.plots_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = MetricsWriter(self.dir / "metrics.jsonl")
        self._log_handler = logging.FileHandler(self.dir / "events.log", encoding="utf-8")
        self._log_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(self._log_handler)
        now = time.time()
        self.status.update({
            "state": "running", "command": self.command, "pid": os.getpid(),
            "host": socket.gethostname(), "started_at": self.status.get("started_at", now),
            "resumed_at": now if self.status.get("started_at") else None,
            "ended_at": None, "error": None, "updated_at": now,
        })
        write_status(self.dir, self.status)
        self._heartbeat = threading.Thread(target=self._beat, name="rlo-heartbeat", daemon=True)
        self._heartbeat.start()
        self._monitor = SystemMonitor(self.dir / "system.jsonl", interval=self.system_interval)
        self._monitor.start()
        log.info("Run directory: %s", self.dir)

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(HEARTBEAT_INTERVAL_S):
            self._write_status()

    def _write_status(self) -> None:
        with self._lock:
            self.status["updated_at"] = time.time()
            try:
                write_status(self.dir, self.status)
            except OSError as error:  # the directory was deleted under a running command
                log.warning("Could not write %s/status.json: %s", self.dir, error)

    def update(self, **fields: Any) -> None:
        """Set status fields (step, total_steps, epoch, best_metric, ...), written at next heartbeat."""
        with self._lock:
            self.status.update(fields)

    def log_metrics(self, *, step: int, split: str, epoch: float | None = None,
                    **values: Any) -> None:
        if self.active and self.metrics is not None:
            self.metrics.log(step=step, split=split, epoch=epoch, **values)

    def truncate_metrics(self, max_step: int) -> None:
        """Drop metric records past `max_step` before a resumed run logs those steps again."""
        if self.active:
            removed = truncate_after_step(self.dir / "metrics.jsonl", max_step)
            if removed:
                log.info("Dropped %d metric records after step %d (not covered by the checkpoint).",
                         removed, max_step)

    def finish(self, state: str, error: str | None = None) -> None:
        if not self.active:
            return
        self._stop_heartbeat.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=2)
        if self._monitor is not None:
            self._monitor.stop()
        with self._lock:
            self.status.update({"state": state, "ended_at": time.time(), "error": error})
        self._write_status()
        if self.metrics is not None:
            self.metrics.close()
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
