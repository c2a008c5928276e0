"""`rlo finetune --nproc 2` on 2 CPU processes (gloo): one run directory, evaluation split
across ranks with the single-process result, resume, a killed rank, and options that need
GPUs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.lm.blocks import build_blocks
from rlo_core.lm.models import load_causal_lm
from rlo_core.lm.perplexity import token_perplexity
from rlo_core.lm.text_data import load_text_splits
from rlo_core.runs import effective_state, read_jsonl

from distributed_helpers import kill_rank_one

runner = CliRunner()
BLOCK, BATCH = 64, 4
# An odd count, so one rank evaluates a padding block that must add nothing.
EVAL_BLOCKS = 7


def finetune_args(model: Path, corpus: Path, runs_dir: Path, *extra: str) -> list[str]:
    return ["finetune", "--model", str(model), "--dataset", f"text:{corpus}",
            "--block-size", str(BLOCK), "--grad-accum", "1", "--lr", "3e-3",
            "--warmup-steps", "0", "--max-eval-blocks", str(EVAL_BLOCKS), "--eval-seqlen", "64",
            "--log-every", "1", "--chunk-tokens", "64", "--device", "cpu",
            "--runs-dir", str(runs_dir), *extra]


def subprocess_env(base: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(base / "xdg"), "COLUMNS": "200"}


def run_rlo(args: list[str], base: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlo_cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=base, env=subprocess_env(base))


def records(run_dir: Path, split: str) -> list[dict]:
    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == split]


@pytest.fixture(scope="module")
def two_process_run(tiny_opt, corpus, tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp-finetune")
    result = run_rlo(finetune_args(tiny_opt, corpus, base / "runs", "--batch-size", str(BATCH),
                                   "--max-steps", "4", "--eval-steps", "2", "--nproc", "2"), base)
    run_dirs = sorted((base / "runs").iterdir()) if (base / "runs").is_dir() else []
    return result, run_dirs, base


@pytest.fixture(scope="module")
def single_process_run(tiny_opt, corpus, tmp_path_factory):
    """The same global batch (2 x 4 blocks) and seed in one process."""
    runs_dir = tmp_path_factory.mktemp("single-finetune")
    result = runner.invoke(app, finetune_args(tiny_opt, corpus, runs_dir, "--batch-size",
                                              str(2 * BATCH), "--max-steps", "4",
                                              "--eval-steps", "2"))
    assert result.exit_code == 0, result.output
    (run_dir,) = runs_dir.iterdir()
    return run_dir


def test_nproc2_finetune_succeeds(two_process_run):
    result, _, _ = two_process_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Finetuning finished") == 1


def test_nproc2_creates_one_run_dir(two_process_run):
    _, run_dirs, _ = two_process_run
    assert len(run_dirs) == 1
    status = json.loads((run_dirs[0] / "status.json").read_text())
    assert status["state"] == "finished"


def test_nproc2_logs_each_step_once(two_process_run):
    _, (run_dir,), _ = two_process_run
    assert [r["step"] for r in records(run_dir, "train")] == [1, 2, 3, 4]
    assert [r["step"] for r in records(run_dir, "val")] == [0, 2, 4]
    assert [r["step"] for r in records(run_dir, "test")] == [0, 4]


def test_nproc2_counts_tokens_of_both_processes(two_process_run):
    _, (run_dir,), _ = two_process_run
    assert records(run_dir, "train")[-1]["tokens"] == 4 * 2 * BATCH * BLOCK


def test_split_evaluation_matches_single_process(two_process_run, single_process_run):
    _, (run_dir,), _ = two_process_run
    for split in ("val", "test"):
        ddp, single = records(run_dir, split)[0], records(single_process_run, split)[0]
        assert ddp["ppl"] == pytest.approx(single["ppl"], rel=1e-9)
    assert records(run_dir, "val")[0]["tokens"] == EVAL_BLOCKS * (BLOCK - 1)


def test_nproc2_training_matches_single_process(two_process_run, single_process_run):
    # Same global batch, seed and order of blocks; only the rounding of DDP's gradient
    # average differs from one process's.
    _, (run_dir,), _ = two_process_run
    ddp, single = records(run_dir, "val")[-1]["ppl"], records(single_process_run, "val")[-1]["ppl"]
    initial = records(run_dir, "val")[0]["ppl"]
    assert ddp < initial
    assert single < initial
    assert ddp == pytest.approx(single, rel=0.01)


def test_nproc2_saved_model_reproduces_val_ppl(two_process_run, corpus):
    _, (run_dir,), _ = two_process_run
    model, tokenizer = load_causal_lm(str(run_dir / "model"))
    validation = load_text_splits(f"text:{corpus}").validation
    blocks = build_blocks(tokenizer, validation, BLOCK, split="validation",
                          max_blocks=EVAL_BLOCKS)
    batches = [{"input_ids": blocks.blocks[i: i + 4]} for i in range(0, len(blocks), 4)]
    final = records(run_dir, "val")[-1]
    assert token_perplexity(model, batches).perplexity == pytest.approx(final["ppl"], rel=1e-4)


def test_nproc2_resumes_with_two_then_one(two_process_run):
    _, (run_dir,), base = two_process_run
    result = run_rlo(["finetune", "--resume", str(run_dir), "--max-steps", "6", "--nproc", "2"],
                     base)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [r["step"] for r in records(run_dir, "train")] == [1, 2, 3, 4, 5, 6]
    # The tied lm_head is not in the checkpoint but shares the loaded embedding.
    assert "missing keys" not in result.stderr
    # The checkpoint of the 2-process job continues in one process with the same global batch.
    result = runner.invoke(app, ["finetune", "--resume", str(run_dir), "--max-steps", "7",
                                 "--batch-size", str(2 * BATCH)])
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in records(run_dir, "train")] == [1, 2, 3, 4, 5, 6, 7]


def test_resume_rejects_other_global_batch(two_process_run):
    _, (run_dir,), _ = two_process_run
    before = (run_dir / "metrics.jsonl").read_text()
    # Every checkpoint of this run has 2 x 4 = 8 blocks per step (1 x 8 after a resume).
    result = runner.invoke(app, ["finetune", "--resume", str(run_dir), "--max-steps", "20",
                                 "--batch-size", "2"])
    assert result.exit_code == 2
    assert "= 8 blocks per step, but this resume would use 1 process(es)" in result.output
    assert f"--batch-size {2 * BATCH} with 1 process(es)" in result.output
    assert (run_dir / "metrics.jsonl").read_text() == before


def test_launcher_rejects_other_global_batch_once(two_process_run):
    _, (run_dir,), _ = two_process_run
    result = runner.invoke(app, ["finetune", "--resume", str(run_dir), "--max-steps", "20",
                                 "--batch-size", str(2 * BATCH), "--nproc", "2"])
    assert result.exit_code == 2
    assert result.output.count("was trained with") == 1
    assert "torchrun" not in result.output


def test_single_process_checkpoint_resumes_with_two(tiny_opt, corpus, tmp_path):
    runs_dir = tmp_path / "runs"
    result = runner.invoke(app, finetune_args(tiny_opt, corpus, runs_dir, "--batch-size",
                                              str(BATCH), "--max-steps", "2",
                                              "--eval-steps", "2"))
    assert result.exit_code == 0, result.output
    (run_dir,) = runs_dir.iterdir()
    result = run_rlo(["finetune", "--resume", str(run_dir), "--max-steps", "4", "--nproc", "2",
                      "--batch-size", str(BATCH // 2)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [r["step"] for r in records(run_dir, "train")] == [1, 2, 3, 4]
    assert records(run_dir, "train")[-1]["tokens"] == 4 * BATCH * BLOCK


def test_failed_new_job_says_nothing_to_resume(tmp_path):
    runs_dir = tmp_path / "runs"
    result = run_rlo(["finetune", "--profile", "tiny-opt-offline", "--dataset",
                      f"text:{tmp_path / 'missing.txt'}", "--runs-dir", str(runs_dir),
                      "--nproc", "2"], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Error (rank 1): Text data" in result.stderr
    assert "No run directory was created, so there is nothing to resume" in result.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_killed_rank_ends_finetune_with_error(tiny_opt, corpus, tmp_path):
    runs_dir = tmp_path / "runs"
    args = finetune_args(tiny_opt, corpus, runs_dir, "--batch-size", str(BATCH),
                         "--max-steps", "100000", "--eval-steps", "2", "--nproc", "2")
    launcher = subprocess.Popen([sys.executable, "-m", "rlo_cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                                env=subprocess_env(tmp_path))

    def ready():
        # Kill once a checkpoint exists, so the launcher's message can offer a resume.
        found = list(runs_dir.glob("*/metrics.jsonl"))
        saved = list(runs_dir.glob("*/checkpoints/checkpoint-*/rlo-batch.json"))
        return found[0] if found and saved else None

    output, metrics = kill_rank_one(launcher, ready)
    assert launcher.returncode != 0, output
    assert "rank 1 (local rank 1" in output, output
    assert "killed by signal SIGKILL" in output, output
    assert "rlo finetune --nproc 2 --resume" in output, output
    status = json.loads((metrics.parent / "status.json").read_text())
    assert effective_state(status) == "failed"
    # The launcher replaces rank 0's broken-connection error with the real cause.
    assert "rank 1 (local rank 1" in status["error"]


def test_fsdp_on_cpu_is_clear_error(tiny_opt, corpus, tmp_path):
    result = runner.invoke(app, finetune_args(tiny_opt, corpus, tmp_path, "--fsdp"))
    assert result.exit_code == 2
    assert "--fsdp needs CUDA GPUs" in result.output
    assert not any(tmp_path.iterdir())


def test_fsdp_launch_is_rejected_before_workers_start(tiny_opt, corpus, tmp_path):
    result = runner.invoke(app, finetune_args(tiny_opt, corpus, tmp_path, "--fsdp",
                                              "--nproc", "2"))
    assert result.exit_code == 2
    assert "--fsdp needs CUDA GPUs" in result.output
    assert "torchrun" not in result.output


def test_quantized_with_nproc_is_rejected(tmp_path):
    result = runner.invoke(app, ["finetune", "--quantized", str(tmp_path / "q.safetensors"),
                                 "--nproc", "2", "--device", "cpu", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--quantized finetuning runs in one process" in result.output
