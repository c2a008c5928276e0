"""`rlo finetune --quantized`: LoRA adapters on 2-bit checkpoints of tiny OPT and Llama models."""

import hashlib
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_core.errors import CheckpointError
from rlo_core.lm.config import FinetuneConfig
from rlo_core.lm.finetune import run_finetune
from rlo_core.lm.models import build_tiny_model, load_causal_lm
from rlo_core.lm.quantized_model import (
    apply_quantized_weights, attach_adapters, frozen_weights_match_codes)
from rlo_core.lm.text_data import load_pydoc
from rlo_core.quant.checkpoint import load_checkpoint
from rlo_core.quant.config import QuantizeConfig
from rlo_core.quant.pipeline import run_quantize
from rlo_core.runs import read_jsonl

ARCHITECTURES = ["opt", "llama2"]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """The models are tiny, so thread synchronization costs more than it saves."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """About 30,000 characters of pydoc paragraphs, split by text:PATH into 90/5/5."""
    path = tmp_path_factory.mktemp("qcorpus") / "corpus.txt"
    path.write_text("\n\n".join(load_pydoc().train[:200]))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", params=ARCHITECTURES)
def quantized(request, corpus, tmp_path_factory):
    """A tiny model of one architecture and its 2-bit GPTQ checkpoint."""
    root = tmp_path_factory.mktemp(f"quantized-{request.param}")
    model = build_tiny_model(root / "model", request.param, load_pydoc().train[:200],
                             vocab_size=320, hidden_size=32, layers=2, heads=4, context=128)
    checkpoint = root / "w2.safetensors"
    run_quantize(QuantizeConfig(model=str(model), dataset=f"text:{corpus}", wbits=2,
                                quant="gptq", nsamples=4, seqlen=64, max_eval_windows=4,
                                baseline=False, save=str(checkpoint), device="cpu",
                                runs_dir=str(root / "runs")))
    return {"model": str(model), "checkpoint": checkpoint, "root": root}


def finetune_config(quantized, corpus, **options) -> FinetuneConfig:
    values = dict(quantized=str(quantized["checkpoint"]), dataset=f"text:{corpus}",
                  block_size=64, batch_size=4, grad_accum=1, lr=1e-2, warmup_steps=0,
                  max_steps=8, eval_steps=8, max_eval_blocks=4, eval_seqlen=64, chunk_tokens=64,
                  log_every=4, device="cpu", runs_dir=str(quantized["root"] / "runs"))
    values.update(options)
    return FinetuneConfig(**values)


@pytest.fixture(scope="module")
def trained(quantized, corpus):
    """Train adapters with the rooted loss, then evaluate the saved adapters with --eval-only."""
    before = sha256(quantized["checkpoint"])
    result = run_finetune(finetune_config(quantized, corpus, loss="rlo"), terminal=False)
    after = sha256(quantized["checkpoint"])
    reloaded = run_finetune(finetune_config(quantized, corpus, eval_only=True), terminal=False)
    return {"result": result, "reloaded": reloaded, "checkpoint_unchanged": before == after}


def test_only_adapters_norms_biases_get_gradients(quantized):
    model, tokenizer = load_causal_lm(quantized["model"], dtype=torch.float32)
    loaded = load_checkpoint(quantized["checkpoint"])
    base = apply_quantized_weights(model, loaded, quantized["checkpoint"], quantized["model"], "cpu")
    peft_model, extras = attach_adapters(base, rank=4, alpha=8)
    input_ids = torch.randint(4, len(tokenizer), (2, 16))
    peft_model(input_ids=input_ids, labels=input_ids).loss.backward()

    with_gradient = {name for name, p in peft_model.named_parameters() if p.grad is not None}
    extra_ids = {id(p) for p in extras.values()}
    allowed = {name for name, p in peft_model.named_parameters()
               if "lora_" in name or id(p) in extra_ids}
    assert with_gradient <= allowed
    assert any("lora_A" in name for name in with_gradient)
    assert any("norm" in name for name in with_gradient)


def test_optimizer_step_keeps_quantized_weights(quantized):
    model, tokenizer = load_causal_lm(quantized["model"], dtype=torch.float32)
    loaded = load_checkpoint(quantized["checkpoint"])
    base = apply_quantized_weights(model, loaded, quantized["checkpoint"], quantized["model"], "cpu")
    peft_model, _ = attach_adapters(base, rank=4, alpha=8)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=0.1)
    input_ids = torch.randint(4, len(tokenizer), (2, 16))
    for _ in range(2):
        optimizer.zero_grad()
        peft_model(input_ids=input_ids, labels=input_ids).loss.backward()
        optimizer.step()
    assert frozen_weights_match_codes(peft_model, base.records)


def test_training_leaves_codes_unchanged(trained):
    assert trained["result"].codes_unchanged
    assert trained["checkpoint_unchanged"]


def test_finetuning_lowers_test_perplexity(trained):
    result = trained["result"]
    assert result.final_test_ppl < result.initial_test_ppl


def test_finetuning_lowers_validation_perplexity(trained):
    result = trained["result"]
    assert result.final_val_ppl < result.initial_val_ppl


def test_reload_reproduces_test_perplexity(trained):
    assert trained["reloaded"].final_test_ppl == trained["result"].final_test_ppl


def test_reload_reproduces_validation_perplexity(trained):
    assert trained["reloaded"].final_val_ppl == trained["result"].final_val_ppl


def test_adapters_saved_beside_checkpoint(trained, quantized):
    folder = Path(str(quantized["checkpoint"]) + ".adapters")
    assert trained["result"].model_dir == folder
    assert (folder / "adapter_model.safetensors").is_file()


def test_metrics_record_each_stage(trained):
    records = read_jsonl(trained["result"].run_dir / "metrics.jsonl")
    stages = [r["stage"] for r in records if r["split"] == "eval"]
    assert stages == ["full-precision", "quantized", "quantized+adapters"]
    assert [r["step"] for r in records if r["split"] == "test"] == [0, 8]


def test_merged_model_matches_adapters(quantized, corpus, trained):
    result = run_finetune(finetune_config(quantized, corpus, eval_only=True,
                                          merge_adapters=True), terminal=False)
    assert result.merged_test_ppl == pytest.approx(result.final_test_ppl, rel=1e-4)
    merged, _ = load_causal_lm(str(result.merged_model_dir), dtype=torch.float32)
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_eval_only_without_adapters_fails(quantized, corpus, tmp_path):
    config = finetune_config(quantized, corpus, eval_only=True, output=str(tmp_path / "none"))
    with pytest.raises(CheckpointError, match="No adapters found"):
        run_finetune(config, terminal=False)


def test_cli_eval_only_needs_quantized():
    result = CliRunner().invoke(app, ["finetune", "--model", "tiny-opt", "--eval-only"])
    assert result.exit_code != 0
    assert "--quantized" in result.output


def test_quantize_load_evaluates_adapters(trained, quantized, corpus):
    result = run_quantize(QuantizeConfig(
        model=quantized["model"], dataset=f"text:{corpus}", load=str(quantized["checkpoint"]),
        seqlen=64, max_eval_windows=4, baseline=False, device="cpu",
        runs_dir=str(quantized["root"] / "runs")))
    rows = {row.source: row for row in result.rows}
    assert set(rows) == {"loaded", "loaded+adapters"}
    (dataset,) = rows["loaded"].perplexity
    adapted = rows["loaded+adapters"].perplexity[dataset]
    assert math.isfinite(adapted)
    assert adapted != rows["loaded"].perplexity[dataset]
