"""Run status: lifecycle states, stale-run detection, and run discovery."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from rlo_core.errors import ConfigError
from rlo_core.runs import Run, effective_state, find_runs, read_status, resolve_run
from rlo_core.runs.status import HEARTBEAT_TIMEOUT_S, write_status
from rlo_core.runs.summary import summarize_run


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def running_status(**fields) -> dict:
    now = time.time()
    return {"state": "running", "pid": 0, "host": socket.gethostname(), "started_at": now - 60,
            "updated_at": now, **fields}


def test_dead_pid_is_stale():
    assert effective_state(running_status(pid=dead_pid())) == "stale"


def test_live_pid_with_fresh_heartbeat_is_running():
    import os

    assert effective_state(running_status(pid=os.getpid())) == "running"


def test_old_heartbeat_is_stale_even_with_live_pid():
    import os

    status = running_status(pid=os.getpid(), updated_at=time.time() - HEARTBEAT_TIMEOUT_S - 5)
    assert effective_state(status) == "stale"


def test_other_host_with_fresh_heartbeat_is_running():
    status = running_status(pid=dead_pid(), host="another-host.invalid")
    assert effective_state(status) == "running"


def test_other_host_with_old_heartbeat_is_stale():
    status = running_status(host="another-host.invalid",
                            updated_at=time.time() - HEARTBEAT_TIMEOUT_S - 5)
    assert effective_state(status) == "stale"


def test_finished_run_with_dead_pid_stays_finished():
    assert effective_state(running_status(state="finished", pid=dead_pid())) == "finished"


def test_missing_status_is_unknown(tmp_path):
    assert read_status(tmp_path) == {"state": "unknown"}


def test_corrupt_status_is_unknown(tmp_path):
    (tmp_path / "status.json").write_text('{"state": "runn')
    assert read_status(tmp_path) == {"state": "unknown"}


def test_crashed_run_summarized_as_stale(tmp_path):
    run = Run.create("train", "crashed", {"loss": "rlo"}, runs_dir=tmp_path)
    write_status(run.dir, running_status(pid=dead_pid(), step=5, total_steps=10))
    summary = summarize_run(run.dir)
    assert summary.state == "stale"
    assert summary.progress == 0.5


def test_run_context_marks_finished(tmp_path):
    with Run.create("train", "ok", {"loss": "ce"}, runs_dir=tmp_path, system_interval=60) as run:
        assert read_status(run.dir)["state"] == "running"
    assert read_status(run.dir)["state"] == "finished"


def test_run_context_marks_failed_with_error(tmp_path):
    run = Run.create("train", "bad", {"loss": "ce"}, runs_dir=tmp_path, system_interval=60)
    with pytest.raises(RuntimeError):
        with run:
            raise RuntimeError("exploded")
    status = read_status(run.dir)
    assert status["state"] == "failed"
    assert "exploded" in status["error"]


def test_run_context_marks_interrupted(tmp_path):
    run = Run.create("train", "stopped", {"loss": "ce"}, runs_dir=tmp_path, system_interval=60)
    with pytest.raises(KeyboardInterrupt):
        with run:
            raise KeyboardInterrupt
    assert read_status(run.dir)["state"] == "interrupted"


def make_runs(runs_dir):
    """Three runs: a train run whose name contains 'gan', a gan run, and a later train run."""
    first = Run.create("train", "mnist-gan-baseline", {}, runs_dir=runs_dir)
    second = Run.create("gan", "dcgan-rlo", {}, runs_dir=runs_dir)
    third = Run.create("train", "digits-mlp-rlo-k3-m3", {}, runs_dir=runs_dir)
    return first.dir, second.dir, third.dir


def test_find_runs_filters_by_command(tmp_path):
    first, second, third = make_runs(tmp_path)
    assert find_runs(tmp_path, "gan") == [second]
    assert find_runs(tmp_path, "train") == [first, third]


def test_resolve_last_is_newest(tmp_path):
    _, _, third = make_runs(tmp_path)
    assert resolve_run("last", tmp_path) == third


def test_resolve_last_of_command(tmp_path):
    _, second, _ = make_runs(tmp_path)
    assert resolve_run("last", tmp_path, command="gan") == second


def test_resolve_last_without_runs_fails(tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve_run("last", tmp_path / "empty")
    assert "No run found" in str(info.value)


def test_resolve_name_and_path(tmp_path):
    _, second, third = make_runs(tmp_path)
    assert resolve_run("digits-mlp-rlo-k3-m3", tmp_path) == third
    assert resolve_run(second.name, tmp_path).resolve() == second.resolve()
    assert resolve_run(str(second), tmp_path / "elsewhere") == second


def test_resolve_partial_word_does_not_match(tmp_path):
    make_runs(tmp_path)
    with pytest.raises(ConfigError) as info:
        resolve_run("3-m3", tmp_path)
    assert "was not found" in str(info.value)


def test_resolve_ambiguous_name_fails(tmp_path):
    Run.create("train", "same", {}, runs_dir=tmp_path)
    Run.create("gan", "same", {}, runs_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        resolve_run("same", tmp_path)
    assert "matches several runs" in str(info.value)
