"""The `--tui` launcher: finding the child's run directory and stopping the child."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

from rlo_cli.tui.launch import child_command, find_child_run, stop_child, wait_for_run
from tui_fixture_runs import make_train_run


def test_child_command_drops_tui_flag():
    command = child_command(["train", "--profile", "quickstart", "--tui"])
    assert command[1:] == ["-m", "rlo_cli", "train", "--profile", "quickstart"]


def test_find_child_run_new_directory(tmp_path):
    before = {make_train_run(tmp_path, name="old", stamp="20240101-000000")}
    new = make_train_run(tmp_path, name="new", stamp="20240102-000000")
    assert find_child_run(SimpleNamespace(pid=999_999), tmp_path, before) == new


def test_find_child_run_resumed_directory(tmp_path):
    run = make_train_run(tmp_path, name="resumed")
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "running", "pid": 4242}))
    assert find_child_run(SimpleNamespace(pid=4242), tmp_path, {run}) == run


def test_find_child_run_resumed_by_worker(tmp_path):
    # Under --nproc the run's status names rank 0, a grandchild of the launched command.
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; worker = subprocess.Popen("
         "[sys.executable, '-c', 'import time; time.sleep(60)']); print(worker.pid, flush=True);"
         " time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(child.stdout.readline())
        run = make_train_run(tmp_path, name="resumed")
        status = json.loads((run / "status.json").read_text())
        (run / "status.json").write_text(json.dumps({**status, "pid": worker_pid}))
        assert find_child_run(child, tmp_path, {run}) == run
    finally:
        import psutil

        for process in psutil.Process(child.pid).children(recursive=True):
            process.kill()
        child.kill()
        child.wait()


def test_find_child_run_nothing_yet(tmp_path):
    before = {make_train_run(tmp_path)}
    assert find_child_run(SimpleNamespace(pid=999_999), tmp_path, before) is None


def test_wait_for_run_child_exits_first(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_for_run(child, tmp_path, set(), poll_s=0.01) is None
    assert child.returncode == 3


def test_stop_child_sends_sigint():
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGINT, lambda *_: sys.exit(130))\n"
              "print('ready', flush=True)\n"
              "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    assert stop_child(child, timeout_s=10) == 130
