"""`--tui` on train, finetune and gan: run the command in a child process, watch it live.

The child runs in its own session with its output in a log file, so the dashboard owns the
terminal and a detached run survives the terminal closing. The child finds its run directory
through `--runs-dir` or `RLO_RUNS_DIR` like any other run, and the dashboard follows it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlo_core.runs import find_runs, read_status

log = logging.getLogger(__name__)

POLL_S = 0.2
STOP_TIMEOUT_S = 60.0  # an interrupted run writes a resumable checkpoint before it exits
LOG_TAIL_LINES = 20


def child_command(argv: list[str]) -> list[str]:
    """Build the `rlo` command line for the child: the same arguments without `--tui`."""
    return [sys.executable, "-m", "rlo_cli", *(arg for arg in argv if arg != "--tui")]


def start_child(command: list[str], runs_dir: Path, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "RLO_RUNS_DIR": str(runs_dir)}
    with open(log_path, "ab") as output:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def child_pids(child: subprocess.Popen) -> set[int]:
    """Return the pids of `child` and its descendants (the workers of a `--nproc` job)."""
    import psutil

    try:
        return {child.pid} | {p.pid for p in psutil.Process(child.pid).children(recursive=True)}
    except psutil.Error:  # the child has exited
        return {child.pid}


def find_child_run(child: subprocess.Popen, runs_dir: Path, before: set[Path]) -> Path | None:
    """Return the run directory of `child`: a new one, or an existing one whose status records
    the pid of the child or of one of its descendants (a resumed run)."""
    pids: set[int] | None = None
    for path in reversed(find_runs(runs_dir)):
        if path not in before:
            return path
        if pids is None:
            pids = child_pids(child)
        if read_status(path).get("pid") in pids:
            return path
    return None


def wait_for_run(child: subprocess.Popen, runs_dir: Path, before: set[Path],
                 poll_s: float = POLL_S) -> Path | None:
    """Wait until the child creates (or reopens) its run directory; None if it exits first."""
    while True:
        exited = child.poll() is not None
        run_dir = find_child_run(child, runs_dir, before)
        if run_dir is not None or exited:
            return run_dir
        time.sleep(poll_s)


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def stop_child(child: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Interrupt the child like Ctrl-C would, then terminate it if it does not exit in time."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            return child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("Run (pid %d) did not stop within %.0f s of SIGINT; terminating it.",
                        child.pid, timeout_s)
            child.terminate()
            try:
                return child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    return child.wait()


def launch_with_dashboard(argv: list[str], runs_dir: Path) -> int:
    """Run `rlo <argv>` as a child process and open the dashboard on its run directory.

    `argv` contains the arguments after `rlo` (for example `["train", "--profile", "quickstart",
    "--tui"]`); `--tui` is dropped. `runs_dir` must be where the child writes its run, that is
    its `--runs-dir` if given, else the default. Quitting the dashboard prompts to stop the
    run or detach from it. Returns an exit code for the CLI: the child's, or 0 after a detach.
    """
    from rich.console import Console

    from rlo_cli.tui.app import DashboardApp

    console = Console(stderr=True)
    runs_dir = Path(runs_dir)
    before = set(find_runs(runs_dir))
    handle, name = tempfile.mkstemp(prefix="rlo-launch-", suffix=".log")
    os.close(handle)
    log_path = Path(name)
    child = start_child(child_command(argv), runs_dir, log_path)
    try:
        with console.status(f"Starting rlo {' '.join(argv[:1])} (pid {child.pid}); waiting for "
                            f"its run directory in {runs_dir}..."):
            run_dir = wait_for_run(child, runs_dir, before)
    except KeyboardInterrupt:
        stop_child(child)
        raise
    if run_dir is None:
        console.print(f"The command exited with code {child.returncode} before creating a run "
                      f"directory. Its output ({log_path}):\n{log_tail(log_path)}",
                      highlight=False, markup=False)
        return child.returncode or 1

    choice = DashboardApp(runs_dir, select=run_dir, child=child).run()
    if choice == "detach":
        console.print(f"Detached: the run continues in the background (pid {child.pid}) and writes "
                      f"{run_dir}. Its console output goes to {log_path}. Watch it again with: "
                      f"rlo tui --runs-dir {runs_dir}", highlight=False, markup=False)
        return 0
    if choice == "stop":
        console.print(f"Stopping the run (pid {child.pid}) with SIGINT...", highlight=False)
        code = stop_child(child)
    else:
        code = wait_or_stop(child, console)
    state = read_status(run_dir).get("state", "unknown")
    console.print(f"Run {run_dir} ended: state {state}, exit code {code}.", highlight=False,
                  markup=False)
    if code not in (0, 130) and state != "finished":
        console.print(log_tail(log_path), highlight=False, markup=False)
    return code


def wait_or_stop(child: subprocess.Popen, console) -> int:
    """Wait for a run whose dashboard closed, and stop it on Ctrl-C. The child runs in its
    own session, so the terminal's Ctrl-C reaches only this process."""
    if child.poll() is None:
        console.print(f"The dashboard closed. Waiting for the run (pid {child.pid}) to end; "
                      "press Ctrl-C to stop it.", highlight=False)
    try:
        return child.wait()
    except KeyboardInterrupt:
        console.print(f"Stopping the run (pid {child.pid}) with SIGINT...", highlight=False)
        return stop_child(child)


def dashboard_for_command(runs_dir: str | None) -> int:
    """Re-run the current `rlo ...` command line without `--tui` under the dashboard."""
    folder = Path(runs_dir or os.environ.get("RLO_RUNS_DIR") or "runs")
    return launch_with_dashboard(sys.argv[1:], folder)
