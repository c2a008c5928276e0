"""`rlo finetune` end to end on a tiny OPT model and the pydoc text, plus bad input."""

import json

import pytest
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.lm.blocks import build_blocks
from rlo_core.lm.models import load_causal_lm
from rlo_core.lm.perplexity import token_perplexity
from rlo_core.lm.text_data import load_text_splits
from rlo_core.runs import read_jsonl

runner = CliRunner()


def smoke_args(model, runs_dir, *extra, corpus=None):
    dataset = f"text:{corpus}" if corpus else "pydoc"
    return ["finetune", "--model", str(model), "--dataset", dataset, "--block-size", "64",
            "--batch-size", "4", "--grad-accum", "1", "--lr", "3e-3", "--warmup-steps", "0",
            "--max-eval-blocks", "6", "--eval-seqlen", "64", "--log-every", "1", "--chunk-tokens", "64",
            "--device", "cpu", "--runs-dir", str(runs_dir), *extra]


@pytest.fixture(scope="module")
def smoke_run(tiny_opt, corpus, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("finetune-runs")
    result = runner.invoke(app, smoke_args(tiny_opt, runs_dir, "--loss", "rlo", "--max-steps", "3",
                                           "--eval-steps", "2", corpus=corpus))
    run_dirs = [p for p in runs_dir.iterdir() if p.is_dir()]
    return result, run_dirs[0] if run_dirs else None


def test_cli_smoke_run_succeeds(smoke_run):
    result, _ = smoke_run
    assert result.exit_code == 0, result.output


def test_cli_smoke_run_prints_perplexity(smoke_run):
    result, _ = smoke_run
    assert "validation perplexity" in result.output


def test_metrics_hold_train_loss_and_lr(smoke_run):
    _, run_dir = smoke_run
    train = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert {"loss", "lr"} <= train[-1].keys()


def test_metrics_hold_val_ppl_before_and_after(smoke_run):
    _, run_dir = smoke_run
    val = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "val"]
    assert [r["step"] for r in val] == [0, 2, 3]
    assert {"ppl", "ce", "eval_objective"} <= val[-1].keys()


def test_val_objective_is_logged_apart_from_ce(smoke_run):
    _, run_dir = smoke_run
    last = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "val"][-1]
    assert last["eval_objective"] < 5.0 < last["ce"]  # rlo with m=5 is bounded by 5


def test_metrics_hold_fixed_window_test_ppl(smoke_run):
    _, run_dir = smoke_run
    test = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "test"]
    assert [r["seqlen"] for r in test] == [64, 64]


def test_status_is_finished(smoke_run):
    _, run_dir = smoke_run
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"


def test_saved_model_loads_with_transformers(smoke_run):
    _, run_dir = smoke_run
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    assert (run_dir / "model" / "model.safetensors").is_file()
    assert type(model).__name__ == "OPTForCausalLM"


def test_saved_model_reproduces_final_val_ppl(smoke_run, corpus):
    _, run_dir = smoke_run
    model, tokenizer = load_causal_lm(str(run_dir / "model"))
    validation = load_text_splits(f"text:{corpus}").validation
    blocks = build_blocks(tokenizer, validation, 64, split="validation", max_blocks=6)
    batches = [{"input_ids": blocks.blocks[i: i + 4]} for i in range(0, len(blocks), 4)]
    final = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "val"][-1]
    assert token_perplexity(model, batches).perplexity == pytest.approx(final["ppl"], rel=1e-4)


def test_resume_continues_from_checkpoint(smoke_run):
    _, run_dir = smoke_run
    result = runner.invoke(app, ["finetune", "--resume", str(run_dir), "--max-steps", "4"])
    assert result.exit_code == 0, result.output
    train = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]


def test_non_finite_loss_stops_with_exit_code_3(tiny_opt, corpus, tmp_path):
    # exp(CE / k) with k = 0.001 overflows float32 on the first step.
    result = runner.invoke(app, smoke_args(tiny_opt, tmp_path, "--loss", "rlo-convex", "--k",
                                           "0.001", "--max-steps", "2", corpus=corpus))
    assert result.exit_code == 3
    assert "No checkpoint had been saved yet" in result.output


def test_block_size_above_context_is_rejected(tiny_opt, tmp_path):
    result = runner.invoke(app, smoke_args(tiny_opt, tmp_path, "--block-size", "1024"))
    assert result.exit_code == 2
    assert "exceeds the context length 128" in result.output


def test_missing_wikitext_lists_expected_files(tiny_opt, tmp_path):
    result = runner.invoke(app, smoke_args(tiny_opt, tmp_path, "--dataset",
                                           f"wikitext2:{tmp_path / 'absent'}"))
    assert result.exit_code == 2
    assert "wiki.test.raw" in result.output


def test_missing_model_names_offline_mode(tmp_path):
    result = runner.invoke(app, smoke_args(tmp_path / "nothing", tmp_path))
    assert result.exit_code == 2
    assert "offline mode is on" in result.output


def test_fp16_on_cpu_is_rejected(tiny_opt, tmp_path):
    result = runner.invoke(app, smoke_args(tiny_opt, tmp_path, "--precision", "fp16"))
    assert result.exit_code == 2
    assert "needs a CUDA device" in result.output


@pytest.mark.parametrize("profile, model", [("tiny-opt-offline", "tiny-opt"),
                                            ("opt125m-wikitext2", "facebook/opt-125m")])
def test_shipped_profiles_resolve(profile, model):
    result = runner.invoke(app, ["finetune", "--profile", profile, "--print-config"])
    assert f"model: {model}" in result.output


def test_last_good_checkpoint_skips_nan_weights(tmp_path):
    import torch
    from safetensors.torch import save_file

    from rlo_core.lm.checkpoints import last_good_checkpoint

    for step, value in ((2, 1.0), (4, float("nan"))):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        save_file({"weight": torch.full((3,), value)}, str(folder / "model.safetensors"))
    assert last_good_checkpoint(tmp_path).name == "checkpoint-2"
