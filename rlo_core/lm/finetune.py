"""`run_finetune(config) -> FinetuneResult`: causal-LM finetuning into a run directory.

Steps: load the text splits and the model, and cut train and validation into blocks. Measure
perplexity before training: token-level on validation, fixed-window on the evaluation split.
Train through `RLOTrainer`, measure again, and save model and tokenizer as safetensors under
`<run>/model` (or `--output`). Trainer checkpoints go to `<run>/checkpoints/checkpoint-N`.

Under torchrun the same function runs on every rank (see `rlo_core.lm.distributed`): rank 0
writes the run directory, evaluation is split across ranks, and progress shows on rank 0.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

from dataclasses import dataclass

from rlo_core.config.schema import to_dict
from rlo_core.errors import ConfigError, NonFiniteLossError, RloError
from rlo_core.lm.checkpoints import last_good_checkpoint
from rlo_core.lm.config import FinetuneConfig, FinetuneResult
from rlo_core.runs import Run

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything a run needs, loaded before its directory is created."""

    splits: Any  # TextSplits
    model: Any
    tokenizer: Any
    context: int  # the model's context length in tokens
    train: Any  # TokenBlocks
    validation: Any  # TokenBlocks
    device: str
    precision: str


def resolve_device_and_precision(config: FinetuneConfig) -> tuple[str, str]:
    """Return ("cpu" or "cuda", "fp32", "fp16" or "bf16") for the config and this machine.

    NOTE: only CPU runs are tested. The CUDA paths (autocast, the fp16 gradient scaler, the
    out-of-memory message, DataParallel on several GPUs) have not been run on a GPU.
    """
    import torch

    cuda = torch.cuda.is_available()
    if config.device == "cuda" and not cuda:
        raise ConfigError("--device cuda was requested but torch sees no CUDA device. Use "
                          "--device cpu or auto.")
    device = "cuda" if config.device == "cuda" or (config.device == "auto" and cuda) else "cpu"
    precision = config.precision
    if precision == "auto":
        if device == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    if precision == "fp16" and device == "cpu":
        raise ConfigError("--precision fp16 needs a CUDA device. On CPU use fp32 or bf16.")
    return device, precision


def autocast_factory(device: str, precision: str):
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device, dtype=dtype)


def run_finetune(config: FinetuneConfig, *, terminal: Optional[bool] = None) -> FinetuneResult:
    """Finetune `config.model` on `config.dataset` in a new run directory."""
    from rlo_core.lm.distributed import start_distributed
    from rlo_core.train.distributed import broadcast_from_main, shutdown_distributed

    config.validate()
    dist = start_distributed(config, resolve_device_and_precision(config)[0])
    if config.quantized:
        from rlo_core.lm.quantized import run_quantized_finetune

        return run_quantized_finetune(config, terminal=terminal)
    try:
        prepared = prepare(config)
        run = Run.create("finetune", config.run_name(), to_dict(config),
                         runs_dir=config.runs_dir, active=dist.is_main)
        # Only rank 0 created the directory, so the others take its path for the Trainer.
        run.dir = Path(broadcast_from_main(str(run.dir), dist))
        with run:
            return execute(config, prepared, run, dist, terminal=terminal)
    finally:
        shutdown_distributed()


def resume_finetune(reference: str, *, runs_dir: Optional[str] = None,
                    overrides: Optional[dict[str, Any]] = None,
                    terminal: Optional[bool] = None) -> FinetuneResult:
    """Continue a finetuning run from its newest checkpoint with finite weights.

    `overrides` (for example a larger max_steps) replace options of the saved config.yaml.
    """
    from rlo_core.errors import CheckpointError
    from rlo_core.lm.checkpoints import GlobalBatch, check_global_batch
    from rlo_core.lm.distributed import start_distributed
    from rlo_core.train.distributed import shutdown_distributed, world_size_from_env

    run, config = open_resumed_run(reference, runs_dir, overrides)
    checkpoint = last_good_checkpoint(run.checkpoint_dir)
    if checkpoint is None:
        raise CheckpointError(f"{run.dir} has no Trainer checkpoint with finite weights "
                              "(checkpoints/checkpoint-N) to resume from; it stopped before the "
                              "first save. Start a new run.")
    check_global_batch(checkpoint, GlobalBatch(world_size_from_env(), config.batch_size,
                                               config.grad_accum))
    dist = start_distributed(config, resolve_device_and_precision(config)[0])
    try:
        prepared = prepare(config)
        run.active = dist.is_main
        run.truncate_metrics(int(checkpoint.name.split("-")[-1]))
        run.config = to_dict(config)
        if dist.is_main:
            run.write_config()
        log.info("Resuming %s from %s.", run.dir, checkpoint.name)
        with run:
            return execute(config, prepared, run, dist, resume_from=checkpoint, terminal=terminal)
    finally:
        shutdown_distributed()


def open_resumed_run(reference: str, runs_dir: Optional[str],
                     overrides: Optional[dict[str, Any]]) -> tuple[Run, FinetuneConfig]:
    """Open a finetune run to resume (writing nothing) and build its config with `overrides`."""
    from rlo_core.config.schema import build_config, validate_options
    from rlo_core.runs import resolve_run

    run_dir = resolve_run(reference, Path(runs_dir) if runs_dir else None, command="finetune")
    run = Run.open(run_dir, active=False)
    if run.command != "finetune":
        raise ConfigError(f"{run_dir} is a '{run.command}' run, not a finetune run.")
    options = validate_options(FinetuneConfig, run.config, source=str(run_dir / "config.yaml"))
    options.update(validate_options(FinetuneConfig, overrides or {}, source="the command line"))
    config = build_config(FinetuneConfig, options)
    if config.quantized:
        from rlo_core.lm.quantized import reject_quantized_resume

        reject_quantized_resume(config)
    return run, config


def check_resume(reference: str, runs_dir: Optional[str], overrides: Optional[dict[str, Any]],
                 processes: int) -> Path:
    """Run the checks of a resume with `processes` processes without loading anything large,
    and return the run directory. The launcher calls it once before starting workers."""
    from rlo_core.lm.checkpoints import GlobalBatch, check_global_batch, latest_checkpoints
    from rlo_core.lm.distributed import check_distributed_options

    run, config = open_resumed_run(reference, runs_dir, overrides)
    check_distributed_options(config, resolve_device_and_precision(config)[0], processes)
    checkpoints = latest_checkpoints(run.checkpoint_dir)
    if checkpoints:
        check_global_batch(checkpoints[0], GlobalBatch(processes, config.batch_size,
                                                       config.grad_accum))
    return run.dir


def prepare(config: FinetuneConfig) -> Prepared:
    """Load text, model and tokenizer and cut blocks, raising before a run directory exists."""
    import torch

    from rlo_core.lm.blocks import build_blocks
    from rlo_core.lm.models import context_length, load_causal_lm
    from rlo_core.lm.text_data import load_text_splits

    device, precision = resolve_device_and_precision(config)
    splits = load_text_splits(config.dataset, data_dir=config.data_dir)
    log.info("Data: %s", splits.describe())
    # Float32 master weights: mixed precision autocasts, and the Trainer's fp16 gradient
    # scaler rejects float16 parameters (facebook/opt-125m is stored in float16).
    model, tokenizer = load_causal_lm(config.model, trust_remote_code=config.trust_remote_code,
                                      dtype=torch.float32)
    context = context_length(model, tokenizer)
    if config.block_size > context:
        raise ConfigError(f"--block-size {config.block_size} exceeds the context length {context} "
                          f"of {config.model} (max_position_embeddings). Use --block-size {context} "
                          "or less.")
    train = build_blocks(tokenizer, splits.train, config.block_size, split="train")
    validation = build_blocks(tokenizer, splits.validation, config.block_size, split="validation",
                              max_blocks=config.max_eval_blocks)
    return Prepared(splits, model, tokenizer, context, train, validation, device, precision)


def test_perplexity(model: Any, prepared: Prepared, config: FinetuneConfig,
                    autocast) -> tuple[Optional[Any], str]:
    """Fixed-window perplexity of the evaluation split, or None when it has under one window."""
    from rlo_core.errors import DataError
    from rlo_core.lm.sharding import sharded_fixed_window_perplexity
    from rlo_core.lm.windows import evaluation_windows

    splits = prepared.splits
    seqlen = config.eval_seqlen or prepared.context
    protocol = f"fixed-window, seqlen {seqlen}, {splits.variant} {splits.eval_split}"
    try:
        windows = evaluation_windows(splits, prepared.tokenizer, seqlen)
    except DataError as error:
        log.warning("Skipping the fixed-window perplexity: %s", error)
        return None, protocol
    with autocast():
        result = sharded_fixed_window_perplexity(
            model, windows, batch_size=config.eval_batch_size or config.batch_size)
    return result, protocol


def log_test(run: Run, step: int, result: Any, protocol: str, splits: Any) -> None:
    if result is not None:
        run.log_metrics(step=step, split="test", ppl=result.perplexity, ce=result.mean_nll,
                        windows=result.windows, seqlen=result.seqlen, protocol=protocol,
                        variant=splits.variant)


def initial_metrics(run: Run) -> dict[str, Any]:
    """Step-0 validation and test records of a resumed run."""
    from rlo_core.runs import read_jsonl

    path = run.dir / "metrics.jsonl"
    records = read_jsonl(path) if path.is_file() else []
    return {record["split"]: record for record in records
            if record.get("step") == 0 and record.get("split") in ("val", "test")}


def last_evaluation(trainer: Any) -> Optional[dict[str, Any]]:
    """Metrics of an evaluation the Trainer already ran at the final step, if any."""
    for entry in reversed(trainer.state.log_history):
        if "eval_ppl" in entry:
            return entry if entry.get("step") == trainer.state.global_step else None
    return None


def training_arguments(config: FinetuneConfig, run: Run, device: str, precision: str,
                       dist: Optional[Any] = None):
    from transformers import TrainingArguments

    from rlo_core.lm.distributed import distributed_arguments
    from rlo_core.train.distributed import DistributedContext

    evaluate_by_steps = config.eval_steps is not None
    return TrainingArguments(
        output_dir=str(run.checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size or config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr, weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, lr_scheduler_type="linear",
        logging_steps=config.log_every, logging_nan_inf_filter=False,
        eval_strategy="steps" if evaluate_by_steps else "epoch", eval_steps=config.eval_steps,
        save_strategy="steps" if evaluate_by_steps else "epoch", save_steps=config.eval_steps,
        save_total_limit=2, seed=config.seed, data_seed=config.seed,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=device == "cpu",
        report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        **distributed_arguments(config, dist or DistributedContext()))


def execute(config: FinetuneConfig, prepared: Prepared, run: Run, dist: Any, *,
            resume_from: Optional[Path] = None, terminal: Optional[bool] = None) -> FinetuneResult:
    import torch
    from transformers import PrinterCallback, default_data_collator

    from rlo_core.lm.callbacks import GlobalBatchCallback, ProgressCallback, RunMetricsCallback
    from rlo_core.lm.checkpoints import GlobalBatch
    from rlo_core.lm.loss import build_criterion
    from rlo_core.lm.distributed import save_trained_model
    from rlo_core.lm.trainer import RLOTrainer
    from rlo_core.train.distributed import nproc_flag

    device, precision = prepared.device, prepared.precision
    model, tokenizer, splits = prepared.model, prepared.tokenizer, prepared.splits
    criterion = build_criterion(config.loss, k=config.k, m=config.m,
                                focal_alpha=config.focal_alpha, focal_gamma=config.focal_gamma)
    tokens_per_step = config.batch_size * config.grad_accum * config.block_size * dist.world_size
    metrics_callback = RunMetricsCallback(run)
    batch_callback = GlobalBatchCallback(
        GlobalBatch(dist.world_size, config.batch_size, config.grad_accum))
    progress = ProgressCallback(tokens_per_step, terminal=terminal)
    autocast = autocast_factory(device, precision)
    trainer = RLOTrainer(
        model=model, args=training_arguments(config, run, device, precision, dist),
        data_collator=default_data_collator, train_dataset=prepared.train,
        eval_dataset=prepared.validation, processing_class=tokenizer,
        callbacks=[metrics_callback, progress, batch_callback] if dist.is_main else [],
        criterion=criterion,
        chunk_tokens=config.chunk_tokens, eval_autocast=autocast)
    trainer.remove_callback(PrinterCallback)
    log.info("Training %s (%s, %s%s) with %s on %d blocks of %d tokens, %d tokens per step.",
             config.model, device, precision,
             f", {dist.world_size} processes{' with FSDP' if config.fsdp else ''}"
             if dist.enabled else "", config.loss, len(prepared.train), config.block_size,
             tokens_per_step)

    if resume_from is None:
        initial = trainer.evaluate()
        initial_test, protocol = test_perplexity(trainer.evaluation_model(), prepared, config,
                                                 autocast)
        log_test(run, 0, initial_test, protocol, splits)
        initial_val_ppl = initial["eval_ppl"]
        initial_test_ppl = initial_test.perplexity if initial_test is not None else None
        log.info("Before training: validation perplexity %.2f; %s perplexity %s.", initial_val_ppl,
                 protocol, f"{initial_test_ppl:.2f}" if initial_test_ppl else "not measured")
    else:
        saved = initial_metrics(run)
        initial_val_ppl = saved.get("val", {}).get("ppl", float("nan"))
        initial_test_ppl = saved.get("test", {}).get("ppl")

    start = time.monotonic()
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except NonFiniteLossError as error:
        progress.close()
        good = last_good_checkpoint(run.checkpoint_dir)
        hint = " No checkpoint had been saved yet."
        if good:
            hint = (f" The last good checkpoint is {good}. Resume from it with 'rlo finetune "
                    f"{nproc_flag(dist)}--resume {run.dir}'.")
        raise NonFiniteLossError(f"{error}{hint}") from None
    except torch.cuda.OutOfMemoryError as error:
        progress.close()
        raise RloError(
            f"CUDA ran out of memory with --batch-size {config.batch_size} and --block-size "
            f"{config.block_size} ({str(error).splitlines()[0]}). Use a smaller --batch-size with "
            "a larger --grad-accum (same tokens per step), --precision bf16, or a smaller "
            "--block-size.") from None
    finally:
        progress.close()
    wall_time = time.monotonic() - start

    final = last_evaluation(trainer) or trainer.evaluate()
    final_test, protocol = test_perplexity(trainer.evaluation_model(), prepared, config, autocast)
    log_test(run, trainer.state.global_step, final_test, protocol, splits)
    model_dir = Path(config.output) if config.output else run.dir / "model"
    save_trained_model(trainer, tokenizer, model_dir, dist)
    log.info("Validation perplexity %.2f -> %.2f in %d steps (%.0f s of training). Model saved to %s.",
             initial_val_ppl, final["eval_ppl"], trainer.state.global_step, wall_time, model_dir)
    run.update(model_dir=str(model_dir))
    return FinetuneResult(
        run_dir=run.dir, model_dir=model_dir, steps=trainer.state.global_step,
        train_tokens=trainer.state.num_input_tokens_seen, wall_time_s=wall_time,
        initial_val_ppl=initial_val_ppl, final_val_ppl=final["eval_ppl"],
        initial_test_ppl=initial_test_ppl,
        final_test_ppl=final_test.perplexity if final_test is not None else None,
        test_protocol=protocol, final_train_loss=metrics_callback.last_train_loss,
        final_val_ce=final["eval_ce"], final_val_objective=final["eval_objective"],
        metrics={"initial_val_ppl": initial_val_ppl, **final})
