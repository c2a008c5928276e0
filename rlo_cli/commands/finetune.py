"""`rlo finetune`: causal-LM finetuning with rlo, rlo-convex, ce or focal, reporting real perplexity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from rlo_cli import launch
from rlo_cli.common import (
    handle_errors,
    print_config_option,
    profile_option,
    resolve_command_config,
    save_profile_option,
    tui_option,
)
from rlo_core.lm.config import FinetuneConfig

if TYPE_CHECKING:
    from rlo_cli.launch_report import JobRuns

D = FinetuneConfig()


def register(app: typer.Typer) -> None:
    @app.command("finetune")
    @handle_errors
    def finetune(
        ctx: typer.Context,
        model: str = typer.Option(D.model, "--model", help="Model folder, Hugging Face id (local cache when HF_HUB_OFFLINE=1), or preset tiny-opt / tiny-llama."),
        dataset: str = typer.Option(D.dataset, "--dataset", help="pydoc, wikitext2, ptb, ptb-new, c4, c4-new, text:PATH or hf:PATH."),
        data_dir: str = typer.Option(D.data_dir, "--data-dir", envvar="RLO_DATA", help="Folder searched for wikitext2, ptb and c4 files."),
        loss: str = typer.Option(D.loss, "--loss", help="rlo, rlo-convex, ce or focal."),
        k: float = typer.Option(D.k, "--k", help="Root k of the rooted loss (> 0)."),
        m: float = typer.Option(D.m, "--m", help="Scale m of the rooted loss (> 0)."),
        focal_alpha: float = typer.Option(D.focal_alpha, "--focal-alpha", help="Focal loss alpha."),
        focal_gamma: float = typer.Option(D.focal_gamma, "--focal-gamma", help="Focal loss gamma."),
        epochs: float = typer.Option(D.epochs, "--epochs", help="Passes over the train split (fractions allowed)."),
        block_size: int = typer.Option(D.block_size, "--block-size", help="Tokens per training block; at most the model's context length."),
        lr: float = typer.Option(D.lr, "--lr", help="Peak AdamW learning rate, decayed linearly to 0."),
        warmup_steps: int = typer.Option(D.warmup_steps, "--warmup-steps", help="Linear warmup, in optimizer steps."),
        weight_decay: float = typer.Option(D.weight_decay, "--weight-decay", help="AdamW weight decay."),
        batch_size: int = typer.Option(D.batch_size, "--batch-size", help="Blocks per micro-batch on each process (with --nproc N, a step trains N x batch-size x grad-accum blocks)."),
        grad_accum: int = typer.Option(D.grad_accum, "--grad-accum", help="Micro-batches per optimizer step."),
        precision: str = typer.Option(D.precision, "--precision", help="auto (bf16 or fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16 mixed precision."),
        seed: int = typer.Option(D.seed, "--seed", help="Random seed."),
        max_steps: Optional[int] = typer.Option(D.max_steps, "--max-steps", help="Stop after this many optimizer steps (overrides --epochs)."),
        eval_steps: Optional[int] = typer.Option(D.eval_steps, "--eval-steps", help="Evaluate and save a checkpoint every N steps \\[default: every epoch]."),
        eval_batch_size: Optional[int] = typer.Option(D.eval_batch_size, "--eval-batch-size", help="Blocks per evaluation batch \\[default: --batch-size]."),
        eval_seqlen: Optional[int] = typer.Option(D.eval_seqlen, "--eval-seqlen", help="Window of the fixed-window test perplexity \\[default: the model's context length; with --quantized, the checkpoint's seqlen]."),
        max_eval_blocks: Optional[int] = typer.Option(D.max_eval_blocks, "--max-eval-blocks", help="Evaluate on at most N validation blocks \\[default: all]."),
        chunk_tokens: int = typer.Option(D.chunk_tokens, "--chunk-tokens", help="Tokens per loss chunk (bounds loss memory); 0 computes the loss in one piece."),
        log_every: int = typer.Option(D.log_every, "--log-every", help="Log the training loss every N steps."),
        trust_remote_code: bool = typer.Option(D.trust_remote_code, "--trust-remote-code", help="Allow model code from the model's repository to run. Only for models you trust."),
        device: str = typer.Option(D.device, "--device", help="auto, cpu or cuda."),
        output: Optional[str] = typer.Option(D.output, "--output", help="Folder for the finetuned model and tokenizer \\[default: <run>/model]; with --quantized, the adapter folder \\[default: CHECKPOINT.adapters]."),
        quantized: Optional[str] = typer.Option(D.quantized, "--quantized", help="Checkpoint written by 'rlo quantize --save': keep its low-bit weights frozen and train LoRA adapters, norms and biases on top (a larger --lr such as 1e-4 suits adapters). --model defaults to the checkpoint's base model."),
        lora_rank: int = typer.Option(D.lora_rank, "--lora-rank", help="Rank of the LoRA adapters (with --quantized)."),
        lora_alpha: float = typer.Option(D.lora_alpha, "--lora-alpha", help="LoRA scaling numerator; the update is scaled by alpha / rank (with --quantized)."),
        eval_only: bool = typer.Option(D.eval_only, "--eval-only", help="With --quantized: evaluate the checkpoint with its saved adapters instead of training."),
        merge_adapters: bool = typer.Option(D.merge_adapters, "--merge-adapters", help="With --quantized: merge the adapters into the dequantized weights and save a model folder under <run>/model."),
        fsdp: bool = typer.Option(D.fsdp, "--fsdp", rich_help_panel=launch.PANEL, help="Shard the model, gradients and optimizer state across the processes (FSDP2 through accelerate, CUDA only), for models that do not fit one GPU. Needs --nproc 2 or more."),
        nproc: int = launch.nproc_option(),
        nnodes: str = launch.nnodes_option(),
        node_rank: int = launch.node_rank_option(),
        master_addr: Optional[str] = launch.master_addr_option(),
        master_port: Optional[int] = launch.master_port_option(),
        rdzv_endpoint: Optional[str] = launch.rdzv_endpoint_option(),
        rdzv_id: Optional[str] = launch.rdzv_id_option(),
        name: Optional[str] = typer.Option(D.name, "--name", help="Run name \\[default: model-dataset-loss]."),
        runs_dir: Optional[str] = typer.Option(D.runs_dir, "--runs-dir", envvar="RLO_RUNS_DIR", help="Folder for run directories \\[default: ./runs]."),
        profile: Optional[str] = profile_option(),
        save_profile: Optional[str] = save_profile_option(),
        print_config: bool = print_config_option(),
        resume: Optional[str] = typer.Option(None, "--resume", help="Continue a run from its newest checkpoint with finite weights. Pass its directory, name, or 'last'."),
        tui: bool = tui_option(),
    ) -> None:
        """Finetune a causal language model and report perplexity before and after."""
        if tui and not launch.inside_torchrun():
            from rlo_cli.tui.launch import dashboard_for_command

            raise typer.Exit(dashboard_for_command(runs_dir))
        values, distributed, start_distributed = launch.split_launch_options(dict(locals()))
        if resume is not None:
            from rlo_cli.common import explicit_options
            from rlo_core.lm.finetune import check_resume, resume_finetune

            overrides = explicit_options(ctx, values)
            overrides.pop("runs_dir", None)
            if start_distributed:
                run_dir = check_resume(resume, runs_dir, overrides, distributed.max_processes)
                start_workers(distributed, distributed.job_runs("finetune", runs_dir, run_dir))
                return
            hide_transformers_progress_bars()
            print_summary(resume_finetune(resume, runs_dir=runs_dir, overrides=overrides))
            return
        config = resolve_command_config(ctx, FinetuneConfig, "finetune", values, profile=profile,
                                        save_profile=save_profile, print_config=print_config)
        if config is None:
            return
        if start_distributed:
            check_before_launch(config, distributed)
            start_workers(distributed, distributed.job_runs("finetune", config.runs_dir))
            return
        from rlo_core.lm.finetune import run_finetune

        hide_transformers_progress_bars()
        print_summary(run_finetune(config))


def check_before_launch(config: FinetuneConfig, options: "launch.LaunchOptions") -> None:
    """Raise the errors every worker would raise, once, before starting them."""
    from rlo_core.lm.distributed import check_distributed_options
    from rlo_core.lm.finetune import resolve_device_and_precision

    config.validate()
    check_distributed_options(config, resolve_device_and_precision(config)[0],
                              options.max_processes)


def start_workers(options: "launch.LaunchOptions", runs: "JobRuns") -> None:
    """Run this same command line on `options.nproc` processes through torchrun."""
    launch.launch(options, launch.current_argv(), "finetune", runs=runs, interrupt_note=(
        "every process stopped at once, and steps after the last Trainer checkpoint (saved "
        "every --eval-steps, or every epoch) are lost."))


def hide_transformers_progress_bars() -> None:
    """Turn off the tqdm bars of weight loading and saving, because Rich progress and logs replace them."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def print_summary(result) -> None:
    """Print perplexity before and after, and where the model was saved (rank 0 only)."""
    if not launch.is_main_rank():
        return
    from rich.table import Table

    from rlo_cli.common import console

    def number(value: Optional[float]) -> str:
        return "-" if value is None else f"{value:,.2f}"

    table = Table(title="Finetuning finished")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_row("validation perplexity (token-level)", number(result.initial_val_ppl),
                  number(result.final_val_ppl))
    table.add_row(f"test perplexity ({result.test_protocol})", number(result.initial_test_ppl),
                  number(result.final_test_ppl))
    if getattr(result, "checkpoint", None) is not None:
        add_quantized_rows(table, result, number)
    table.add_row("validation objective", "", number(result.final_val_objective))
    table.add_row("optimizer steps", "", str(result.steps))
    table.add_row("training time", "", f"{result.wall_time_s:.0f} s")
    console.print(table)
    if getattr(result, "checkpoint", None) is not None:
        merged = (f"\nMerged model saved in {result.merged_model_dir}"
                  if result.merged_model_dir else "")
        console.print(f"Adapters in {result.model_dir}{merged}\nRun saved in {result.run_dir}",
                      highlight=False)
        return
    console.print(f"Model saved in {result.model_dir}\nRun saved in {result.run_dir}", highlight=False)


def add_quantized_rows(table, result, number) -> None:
    """Rows of a --quantized run: full-precision and merged perplexity, and the share recovered."""
    table.add_row("test perplexity, full precision", number(result.full_precision_test_ppl), "")
    if result.merged_test_ppl is not None:
        table.add_row("test perplexity, adapters merged", "", number(result.merged_test_ppl))
    recovered = result.recovered_fraction
    table.add_row("quantization loss recovered", "",
                  "-" if recovered is None else f"{recovered:.1%}")
    table.add_row("trainable parameters", "",
                  f"{result.trainable_parameters:,} of {result.total_parameters:,}")
