"""`rlo train` on 2 CPU processes (gloo): results, checkpoints across process counts, and a
rank killed mid-epoch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlo_core.data import DataOptions, build_dataset
from rlo_core.errors import CheckpointError
from rlo_core.models import create_net
from rlo_core.runs import effective_state, read_jsonl
from rlo_core.train.checkpoint import load_checkpoint
from rlo_core.train.config import TrainConfig
from rlo_core.train.pipeline import resume_train, run_train

from distributed_helpers import kill_rank_one

TINY = ["--dataset", "digits", "--net", "res18", "--image-size", "8", "--batch-size", "128",
        "--device", "cpu", "--workers", "0", "--lr", "3e-3", "--log-every", "1"]
STEPS_PER_EPOCH = 12  # ceil(1437 digits train images / 128)
# BatchNorm normalizes over 64 images per process instead of 128 (no --sync-bn on CPU), and
# the 2-process epoch repeats one image to split 1437 evenly. Both move the result a little.
ACCURACY_TOLERANCE = 0.05


def tiny_config(runs_dir: Path, **overrides) -> TrainConfig:
    options = dict(dataset="digits", net="res18", image_size=8, batch_size=128, epochs=1,
                   device="cpu", workers=0, lr=3e-3, log_every=1, runs_dir=str(runs_dir))
    options.update(overrides)
    return TrainConfig(**options)


def subprocess_env(base: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(base / "xdg"), "COLUMNS": "200",
            "RLO_RUNS_DIR": str(base / "runs")}


def rlo(*args: str) -> list[str]:
    return [sys.executable, "-m", "rlo_cli", *args]


def logged_test_accuracy(run_dir: Path) -> float:
    (record,) = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "test"]
    return record["acc"]


@pytest.fixture(scope="module", autouse=True)
def one_cpu_thread():
    """Run single-process training here on one thread, as each worker of a 2-process job on
    2 cores has (the launcher sets OMP_NUM_THREADS to cores / processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- one 2-process epoch against one single-process epoch ---------------------------------

@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    # --download runs the rank-0-first data preparation; digits ships with scikit-learn, so
    # nothing is fetched.
    result = subprocess.run(rlo("train", *TINY, "--epochs", "1", "--nproc", "2", "--download",
                                "--runs-dir", str(base / "runs")),
                            capture_output=True, text=True, timeout=300, cwd=base,
                            env=subprocess_env(base))
    run_dirs = sorted((base / "runs").iterdir()) if (base / "runs").is_dir() else []
    return result, run_dirs


@pytest.fixture(scope="module")
def single_process_run(tmp_path_factory):
    return run_train(tiny_config(tmp_path_factory.mktemp("single") / "runs"))


def test_nproc2_run_succeeds(two_process_run):
    result, _ = two_process_run
    assert result.returncode == 0, result.stdout + result.stderr


def test_nproc2_creates_one_run_dir(two_process_run):
    _, run_dirs = two_process_run
    assert len(run_dirs) == 1


def test_nproc2_accuracy_matches_single_process(two_process_run, single_process_run):
    _, (run_dir,) = two_process_run
    assert logged_test_accuracy(run_dir) == pytest.approx(single_process_run.final_acc,
                                                   abs=ACCURACY_TOLERANCE)


def test_nproc2_logs_each_step_once(two_process_run):
    _, (run_dir,) = two_process_run
    steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "train"]
    assert steps == list(range(1, STEPS_PER_EPOCH + 1))


def test_nproc2_prints_summary_once(two_process_run):
    result, _ = two_process_run
    assert result.stdout.count("Training finished") == 1


def test_nproc2_run_finished(two_process_run):
    _, (run_dir,) = two_process_run
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"


def test_nproc2_checkpoint_has_no_module_prefix(two_process_run):
    _, (run_dir,) = two_process_run
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert not [key for key in state["model"] if key.startswith("module.")]


def test_nproc2_checkpoint_reproduces_accuracy(two_process_run):
    """The weights and BatchNorm buffers rank 0 saved give the logged accuracy in a single
    process (rank 1 evaluated half of the test set with them)."""
    _, (run_dir,) = two_process_run
    model = create_net("res18", 10, 8)
    model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"])
    model.eval()
    data = build_dataset("digits", DataOptions(image_size=8, aug=False))
    loader = torch.utils.data.DataLoader(data.test, batch_size=128)
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    accuracy = correct / len(data.test)
    assert accuracy == pytest.approx(logged_test_accuracy(run_dir), abs=1.5 / len(data.test))


# -- resume across process counts ------------------------------------------------------------

def test_resume_across_process_counts(tmp_path, single_process_run):
    """1 process for 3 steps, then plain torchrun with 2 processes to step 8, then 1 process
    to the end of the epoch: every step runs once, and the result matches one process."""
    first = run_train(tiny_config(tmp_path / "runs", max_steps=3, name="mixed"))
    run_dir = first.run_dir
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "-m", "rlo_cli", "train", "--resume", str(run_dir), "--max-steps", "8"]
    result = subprocess.run(torchrun, capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env=subprocess_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    middle = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (middle["step"], middle["epoch"], middle["batches_done"]) == (8, 0, 8)

    final = resume_train(str(run_dir), overrides={"max_steps": STEPS_PER_EPOCH})
    assert (final.steps, final.epochs_done) == (STEPS_PER_EPOCH, 1)
    steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "train"]
    assert steps == list(range(1, STEPS_PER_EPOCH + 1))
    assert final.final_acc == pytest.approx(single_process_run.final_acc,
                                            abs=ACCURACY_TOLERANCE)


def test_resume_rejects_misaligned_position(tmp_path):
    first = run_train(tiny_config(tmp_path / "runs", max_steps=1))
    with pytest.raises(CheckpointError, match="not a whole number of this run's micro-batches"):
        resume_train(str(first.run_dir), overrides={"batch_size": 96, "max_steps": 2})


# -- a rank killed mid-epoch -------------------------------------------------------------------

def test_killed_rank_ends_job_with_error(tmp_path):
    runs_dir = tmp_path / "runs"
    launcher = subprocess.Popen(rlo("train", *TINY, "--epochs", "20", "--nproc", "2",
                                    "--runs-dir", str(runs_dir)),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=tmp_path, env=subprocess_env(tmp_path))

    def ready():
        found = list(runs_dir.glob("*/metrics.jsonl"))
        return found[0] if found and found[0].read_text().count("\n") >= 2 else None

    # The whole job must end within 60 s of a rank's death.
    output, metrics = kill_rank_one(launcher, ready, exit_timeout=60)
    assert launcher.returncode != 0, output
    assert "rank 1 (local rank 1" in output, output
    assert "killed by signal SIGKILL" in output, output
    status = json.loads((metrics.parent / "status.json").read_text())
    # Rank 0 marks the run failed when torchrun's SIGTERM reaches it in time, and the
    # launcher marks it failed otherwise, with its own description of the cause.
    assert effective_state(status) == "failed"
    assert "rank 1 (local rank 1" in status["error"]
