"""Kill one rank of a running `--nproc 2` job and collect the launcher's output."""

import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

import psutil


def wait_for(condition: Callable[[], Optional[Path]], timeout: float) -> Optional[Path]:
    """Poll `condition` until it returns a path or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found is not None:
            return found
        time.sleep(0.2)
    return None


def kill_rank_one(launcher: subprocess.Popen, ready: Callable[[], Optional[Path]], *,
                  start_timeout: float = 180, exit_timeout: float = 60) -> tuple[str, Path]:
    """Send SIGKILL to rank 1 once `ready` returns the run's metrics file, then return the
    launcher's output and that file. The launcher must exit within `exit_timeout` seconds."""
    workers: list[psutil.Process] = []
    try:
        metrics = wait_for(ready, start_timeout)
        assert metrics is not None, "the job logged no training step in time"
        workers = [p for p in psutil.Process(launcher.pid).children(recursive=True)
                   if "rlo_cli" in p.cmdline()]
        (rank1,) = [p for p in workers if p.environ().get("RANK") == "1"]
        rank1.send_signal(signal.SIGKILL)
        output, _ = launcher.communicate(timeout=exit_timeout)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for worker in workers:
            if worker.is_running():
                worker.kill()
    return output, metrics
