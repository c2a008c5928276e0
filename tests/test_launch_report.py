"""The launcher's report after a distributed job stops early: which run directory, the resume
hint, and marking a run whose rank 0 could not."""

import json
import time

from rlo_cli.launch import LaunchOptions, parse_torchrun_arguments
from rlo_cli.launch_report import JobRuns, mark_failed
from rlo_core.runs.status import write_status


def make_run(runs_dir, name, **status):
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("command: finetune\n")
    write_status(run_dir, {"state": "running", "updated_at": time.time(), **status})
    return run_dir


def read(run_dir):
    return json.loads((run_dir / "status.json").read_text())


def test_job_runs_finds_new_run_of_job(tmp_path):
    make_run(tmp_path, "20260101-000000-finetune-old", pid=1)
    runs = JobRuns("finetune", 2, tmp_path)
    other = make_run(tmp_path, "20260101-000001-finetune-other", pid=7)
    mine = make_run(tmp_path, "20260101-000002-finetune-mine", pid=5)
    assert runs.run_dir([5, 6]) == mine
    assert runs.run_dir([7]) == other
    assert runs.run_dir([99]) is None


def test_job_runs_without_new_run(tmp_path):
    make_run(tmp_path, "20260101-000000-finetune-old", pid=1)
    runs = JobRuns("finetune", 2, tmp_path)
    assert runs.run_dir() is None
    assert "nothing to resume" in runs.resume_hint(None)


def test_resume_hint_names_run_and_process_count(tmp_path):
    run_dir = make_run(tmp_path, "20260101-000000-train-a", pid=1)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    hint = JobRuns("train", 4, tmp_path, resume_dir=run_dir).resume_hint(run_dir)
    assert f"'rlo train --nproc 4 --resume {run_dir}'" in hint


def test_resume_hint_without_checkpoint(tmp_path):
    run_dir = make_run(tmp_path, "20260101-000000-finetune-a", pid=1)
    (run_dir / "checkpoints").mkdir()
    hint = JobRuns("finetune", 2, tmp_path).resume_hint(run_dir)
    assert "saved no checkpoint before the failure" in hint
    assert "--resume" not in hint


def test_multi_node_hint_does_not_claim_no_run(tmp_path):
    hint = JobRuns("train", 8, tmp_path, multi_node=True).resume_hint(None)
    assert "If rank 0 created a run directory" in hint


def test_mark_failed_running_run(tmp_path):
    run_dir = make_run(tmp_path, "20260101-000000-finetune-a", pid=5)
    mark_failed(run_dir, [5, 6], "rank 0 was killed by signal SIGKILL.")
    status = read(run_dir)
    assert status["state"] == "failed"
    assert status["error"] == "rank 0 was killed by signal SIGKILL."


def test_mark_failed_keeps_rank_error(tmp_path):
    run_dir = make_run(tmp_path, "20260101-000000-finetune-a", pid=5, state="failed",
                       error="RuntimeError: Connection closed by peer")
    mark_failed(run_dir, [5], "rank 1 was killed by signal SIGKILL.")
    status = read(run_dir)
    assert status["error"] == "rank 1 was killed by signal SIGKILL."
    assert status["rank_error"] == "RuntimeError: Connection closed by peer"


def test_mark_failed_leaves_other_runs(tmp_path):
    finished = make_run(tmp_path, "20260101-000000-finetune-a", pid=5, state="finished")
    foreign = make_run(tmp_path, "20260101-000001-finetune-b", pid=9)
    mark_failed(finished, [5], "failed")
    mark_failed(foreign, [5], "failed")
    assert read(finished)["state"] == "finished"
    assert read(foreign)["state"] == "running"


def test_worker_arguments_bypass_torchrun_parser():
    # '--m' alone is an ambiguous prefix of torchrun's --master-addr and --master-port.
    worker = ["finetune", "--m", "4", "--max-steps", "2"]
    parsed = parse_torchrun_arguments(LaunchOptions(nproc=2), worker)
    assert parsed.training_script_args == worker
    assert parsed.training_script == "rlo_cli"
