"""`rlo finetune --quantized CHECKPOINT`: LoRA finetuning on top of frozen low-bit weights.

Steps: rebuild the checkpoint's base model and measure its fixed-window test perplexity in
full precision. Set the quantized weights (frozen) and measure again. Attach LoRA adapters to
the quantized layers, make norms and biases trainable, and train with the chosen loss. Measure
once more and save the adapters beside the checkpoint. With `--eval-only` the saved adapters
are loaded and measured instead of trained. With `--merge-adapters` they are also folded into
the dequantized weights and saved as a model folder under `<run>/model`.
Every perplexity goes to metrics.jsonl: split "val" (token-level), "test" (fixed-window,
before and after) and "eval" (fixed-window, one record per stage).

NOTE: only CPU runs are tested; the CUDA path (device placement, mixed precision) has not run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from rlo_core.config.schema import to_dict
from rlo_core.errors import CheckpointError, ConfigError
from rlo_core.lm.config import FinetuneConfig, FinetuneResult
from rlo_core.runs import Run

log = logging.getLogger(__name__)


@dataclass
class QuantizedFinetuneResult(FinetuneResult):
    """A finetune result plus the quantization figures; `model_dir` is the adapter folder."""

    checkpoint: Optional[Path] = None
    full_precision_test_ppl: Optional[float] = None
    merged_test_ppl: Optional[float] = None
    merged_model_dir: Optional[Path] = None
    recovered_fraction: Optional[float] = None  # of the perplexity lost to quantization
    codes_unchanged: Optional[bool] = None
    trainable_parameters: int = 0
    total_parameters: int = 0


def recovered_fraction(full: Optional[float], quantized: Optional[float],
                       final: Optional[float]) -> Optional[float]:
    """(quantized - final) / (quantized - full), or None when quantization lost nothing."""
    if full is None or quantized is None or final is None or not quantized > full:
        return None
    return (quantized - final) / (quantized - full)


def resolve_model_reference(config: FinetuneConfig, header: dict[str, Any]) -> str:
    """Return the checkpoint's base model, unless --model was changed from its default."""
    if config.model != FinetuneConfig.model:
        return config.model
    reference = header.get("model")
    if not reference:
        raise CheckpointError(f"{config.quantized} does not record its base model. Pass it with "
                              "--model.")
    return reference


def run_quantized_finetune(config: FinetuneConfig, *,
                           terminal: Optional[bool] = None) -> QuantizedFinetuneResult:
    """Train (or with eval_only, evaluate) adapters on `config.quantized` in a new run directory."""
    from rlo_core.lm.finetune import prepare
    from rlo_core.lm.quantized_adapters import default_adapter_dir, read_metadata
    from rlo_core.quant.checkpoint import load_checkpoint

    config.validate()
    loaded = load_checkpoint(config.quantized)
    model_reference = resolve_model_reference(config, loaded.header)
    adapter_dir = Path(config.output) if config.output else default_adapter_dir(config.quantized)
    if config.eval_only:
        read_metadata(adapter_dir)  # raises before a run directory exists
    eval_seqlen = config.eval_seqlen or int(loaded.header.get("seqlen") or 0) or None
    effective = replace(config, model=model_reference, eval_seqlen=eval_seqlen)
    prepared = prepare(effective)
    name = config.name or (f"{Path(config.quantized).stem}-"
                           f"{'eval-adapters' if config.eval_only else config.loss}")
    run = Run.create("finetune", name, {**to_dict(config), "base_model": model_reference},
                     runs_dir=config.runs_dir)
    with run:
        return QuantizedSession(effective, prepared, run, loaded, adapter_dir,
                                terminal=terminal).execute()


class QuantizedSession:
    """Stages of one quantized finetuning run inside its run directory."""

    def __init__(self, config: FinetuneConfig, prepared: Any, run: Run, loaded: Any,
                 adapter_dir: Path, *, terminal: Optional[bool] = None):
        from rlo_core.lm.finetune import autocast_factory
        from rlo_core.lm.loss import build_criterion

        self.config = config
        self.prepared = prepared
        self.run = run
        self.loaded = loaded
        self.adapter_dir = adapter_dir
        self.terminal = terminal
        self.autocast = autocast_factory(prepared.device, prepared.precision)
        self.criterion = build_criterion(config.loss, k=config.k, m=config.m,
                                         focal_alpha=config.focal_alpha,
                                         focal_gamma=config.focal_gamma)
        self.protocol = ""
        self.last_test: Any = None  # the latest fixed-window PerplexityResult

    # -- measurements -----------------------------------------------------------------------

    def measure_test_ppl(self, model: Any, step: int, stage: str) -> Optional[float]:
        """Measure the fixed-window test perplexity and log it as split "eval" with `stage`."""
        from rlo_core.lm.finetune import test_perplexity

        model.to(self.prepared.device)
        result, self.protocol = test_perplexity(model, self.prepared, self.config, self.autocast)
        if result is None:
            return None
        self.run.log_metrics(step=step, split="eval", stage=stage, ppl=result.perplexity,
                             ce=result.mean_nll, windows=result.windows, seqlen=result.seqlen,
                             protocol=self.protocol)
        log.info("Test perplexity (%s, %s): %.4f", stage, self.protocol, result.perplexity)
        self.last_test = result
        return result.perplexity

    def validation(self, model: Any, step: int) -> dict[str, float]:
        """Measure the token-level validation objective, CE and perplexity, logged as split "val"."""
        from torch.utils.data import DataLoader
        from transformers import default_data_collator

        from rlo_core.lm.trainer import evaluate_batches

        model.to(self.prepared.device)
        loader = DataLoader(self.prepared.validation, shuffle=False,
                            batch_size=self.config.eval_batch_size or self.config.batch_size,
                            collate_fn=default_data_collator)
        result = evaluate_batches(model, loader, self.criterion,
                                  chunk_tokens=self.config.chunk_tokens, autocast=self.autocast)
        self.run.log_metrics(step=step, split="val", loss=result.objective,
                             eval_objective=result.objective, ce=result.ce, ppl=result.ppl,
                             tokens=result.tokens)
        return {"eval_objective": result.objective, "eval_ce": result.ce, "eval_ppl": result.ppl}

    def log_test(self, step: int) -> None:
        from rlo_core.lm.finetune import log_test

        log_test(self.run, step, self.last_test, self.protocol,
                 self.prepared.splits)

    # -- stages -----------------------------------------------------------------------------

    def execute(self) -> QuantizedFinetuneResult:
        from rlo_core.lm.quantized_adapters import load_adapters
        from rlo_core.lm.quantized_model import (
            apply_quantized_weights, attach_adapters, count_parameters, file_sha256,
            frozen_weights_match_codes)

        config, prepared = self.config, self.prepared
        model = prepared.model
        full_ppl = self.measure_test_ppl(model, 0, "full-precision")
        model.to("cpu")
        base = apply_quantized_weights(model, self.loaded, Path(config.quantized), config.model,
                                       prepared.device)
        self.last_test = None
        quantized_ppl = self.measure_test_ppl(model, 0, "quantized")
        self.log_test(0)
        initial = self.validation(model, 0)
        log.info("Before adapters: validation perplexity %.4f, test perplexity %s.",
                 initial["eval_ppl"], f"{quantized_ppl:.4f}" if quantized_ppl else "not measured")

        start = time.monotonic()
        if config.eval_only:
            peft_model, extras = load_adapters(self.adapter_dir, base)
            steps, final_train_loss = 0, None
            final = self.validation(peft_model, 0)
        else:
            peft_model, extras = attach_adapters(base, rank=config.lora_rank,
                                                 alpha=config.lora_alpha)
            steps, final, final_train_loss = self.train(peft_model)
        wall_time = time.monotonic() - start
        trainable, total = count_parameters(peft_model)

        final_ppl = self.measure_test_ppl(peft_model, steps, "quantized+adapters")
        self.log_test(steps)
        codes_unchanged = (frozen_weights_match_codes(peft_model, base.records, prepared.device)
                           and file_sha256(base.checkpoint) == base.checkpoint_sha256)
        if not codes_unchanged:
            raise CheckpointError("The frozen quantized weights changed during finetuning; the "
                                  "adapters were not saved. This is a bug in rlo.")
        if not config.eval_only:
            self.save(peft_model, extras, base, full_ppl, quantized_ppl, final_ppl, final)
        merged_ppl, merged_dir = (self.merge(peft_model, steps) if config.merge_adapters
                                  else (None, None))
        recovered = recovered_fraction(full_ppl, quantized_ppl, final_ppl)
        self.run.update(model_dir=str(merged_dir or self.adapter_dir),
                        best_metric=final_ppl, best_metric_name="ppl")
        log.info("Test perplexity: full precision %s, quantized %s, with adapters %s "
                 "(%s of the loss recovered).", full_ppl, quantized_ppl, final_ppl,
                 f"{recovered:.1%}" if recovered is not None else "none")
        return QuantizedFinetuneResult(
            run_dir=self.run.dir, model_dir=self.adapter_dir, steps=steps,
            train_tokens=steps * config.batch_size * config.grad_accum * config.block_size,
            wall_time_s=wall_time, initial_val_ppl=initial["eval_ppl"],
            final_val_ppl=final["eval_ppl"], initial_test_ppl=quantized_ppl,
            final_test_ppl=final_ppl, test_protocol=self.protocol,
            final_train_loss=final_train_loss, final_val_ce=final["eval_ce"],
            final_val_objective=final["eval_objective"],
            metrics={"initial_val_ppl": initial["eval_ppl"], **final},
            checkpoint=base.checkpoint, full_precision_test_ppl=full_ppl,
            merged_test_ppl=merged_ppl, merged_model_dir=merged_dir,
            recovered_fraction=recovered, codes_unchanged=codes_unchanged,
            trainable_parameters=trainable, total_parameters=total)

    def train(self, peft_model: Any) -> tuple[int, dict[str, float], Optional[float]]:
        from rlo_core.lm.quantized_train import train_adapters

        return train_adapters(self.config, self.prepared, self.run, peft_model, self.criterion,
                              self.autocast, terminal=self.terminal)

    def save(self, peft_model: Any, extras: dict, base: Any, full_ppl: Optional[float],
             quantized_ppl: Optional[float], final_ppl: Optional[float],
             final: dict[str, float]) -> None:
        from rlo_core.lm.quantized_adapters import save_adapters

        config = self.config
        metadata = {"checkpoint": str(base.checkpoint), "checkpoint_sha256": base.checkpoint_sha256,
                    "base_model": base.model_reference, "loss": config.loss, "k": config.k,
                    "m": config.m, "lora_rank": config.lora_rank, "lora_alpha": config.lora_alpha,
                    "run_dir": str(self.run.dir), "test_protocol": self.protocol,
                    "test_ppl": {"full_precision": full_ppl, "quantized": quantized_ppl,
                                 "adapters": final_ppl},
                    "val_ppl": final["eval_ppl"]}
        save_adapters(self.adapter_dir, peft_model, extras, metadata)
        log.info("Adapters saved to %s.", self.adapter_dir)

    def merge(self, peft_model: Any, step: int) -> tuple[Optional[float], Path]:
        from rlo_core.lm.models import save_causal_lm
        from rlo_core.lm.quantized_adapters import merge_adapters

        merged = merge_adapters(peft_model)
        merged_ppl = self.measure_test_ppl(merged, step, "merged")
        folder = self.run.dir / "model"
        save_causal_lm(merged, self.prepared.tokenizer, folder)
        log.info("Merged model saved to %s.", folder)
        return merged_ppl, folder


def reject_quantized_resume(config: FinetuneConfig) -> None:
    if config.quantized:
        raise ConfigError("--resume is not supported for --quantized runs: the adapters are saved "
                          "only at the end. Start a new run.")
