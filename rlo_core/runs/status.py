"""The `status.json` heartbeat of a run and stale-run detection."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from rlo_core import atomic

STATES = ("running", "finished", "failed", "interrupted", "stale")

# A running process refreshes status.json every few seconds. Past this many seconds without
# a refresh, readers treat the run as stale even if its pid still exists, for example a
# process on another host or a hung one.
HEARTBEAT_TIMEOUT_S = 120.0


def write_status(run_dir: Path, status: dict[str, Any]) -> None:
    atomic.write_json(Path(run_dir) / "status.json", status)


def read_status(run_dir: Path) -> dict[str, Any]:
    """Read status.json; a missing or unreadable file gives state 'unknown' instead of raising."""
    path = Path(run_dir) / "status.json"
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"state": "unknown"}
    if not isinstance(status, dict):
        return {"state": "unknown"}
    return status


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # os.kill(0, ...) and negative pids address process groups, not one process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_state(status: dict[str, Any], now: float | None = None) -> str:
    """Return the state, with 'running' turned into 'stale' when the writer is gone.

    A run is stale when its pid no longer exists on this host, or when its heartbeat
    (`updated_at`) is older than HEARTBEAT_TIMEOUT_S.
    """
    state = status.get("state", "unknown")
    if state != "running":
        return state
    now = time.time() if now is None else now
    if status.get("host") == socket.gethostname():
        pid = status.get("pid")
        if isinstance(pid, int) and not _pid_alive(pid):
            return "stale"
    updated = status.get("updated_at")
    if isinstance(updated, (int, float)) and now - updated > HEARTBEAT_TIMEOUT_S:
        return "stale"
    return state
