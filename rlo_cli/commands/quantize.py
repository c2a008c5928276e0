"""`rlo quantize`: QuIP/GPTQ post-training quantization to 2, 3 or 4 bits with perplexity."""

from __future__ import annotations

from typing import Optional

import typer

from rlo_cli.common import (
    handle_errors,
    print_config_option,
    profile_option,
    resolve_command_config,
    save_profile_option,
)
from rlo_core.quant.config import QuantizeConfig

D = QuantizeConfig()


def register(app: typer.Typer) -> None:
    @app.command("quantize")
    @handle_errors
    def quantize(
        ctx: typer.Context,
        model: Optional[str] = typer.Argument(D.model, help="Model folder (such as a finetune run's model/ folder), a model in the Hugging Face cache, or the tiny-opt / tiny-llama preset."),
        dataset: str = typer.Argument(D.dataset, help="Calibration data (train split): pydoc, wikitext2, ptb, ptb-new, c4, c4-new, text:PATH or hf:PATH."),
        wbits: int = typer.Option(D.wbits, "--wbits", help="Bits per weight: 2, 3 or 4; 16 only evaluates the model."),
        quant: str = typer.Option(D.quant, "--quant", help="Rounding method: nearest, gptq, ldlq or ldlqRG."),
        incoh_processing: bool = typer.Option(D.incoh_processing, "--incoh-processing/--no-incoh-processing", help="QuIP incoherence processing: rescaling, random orthogonal transforms of W and H, one symmetric grid per matrix."),
        incoh_transform: str = typer.Option(D.incoh_transform, "--incoh-transform", help="Transforms for incoherence processing: hadamard (randomized Hadamard) or kronecker (Kronecker product of two random orthogonal matrices)."),
        npasses: int = typer.Option(D.npasses, "--npasses", help="Greedy coordinate-descent sweeps after LDLQ-RG (0 = none)."),
        nsamples: int = typer.Option(D.nsamples, "--nsamples", help="Calibration windows."),
        seqlen: Optional[int] = typer.Option(D.seqlen, "--seqlen", help="Tokens per calibration and evaluation window \\[default: the model's context length]."),
        percdamp: float = typer.Option(D.percdamp, "--percdamp", help="Hessian damping as a fraction of its mean diagonal."),
        groupsize: Optional[int] = typer.Option(D.groupsize, "--groupsize", help="Input columns per quantization group \\[default: one group per row]."),
        act_order: bool = typer.Option(D.act_order, "--act-order", help="Quantize columns in decreasing order of the Hessian diagonal (gptq, ldlq)."),
        lazy_batch: bool = typer.Option(D.lazy_batch, "--lazy-batch/--no-lazy-batch", help="Apply rounding feedback in blocks of 128 columns (same result, faster)."),
        unbiased: bool = typer.Option(D.unbiased, "--unbiased", help="Stochastic (unbiased) rounding instead of rounding to nearest."),
        seed: int = typer.Option(D.seed, "--seed", help="Seed of the calibration windows, transforms and stochastic rounding."),
        save: Optional[str] = typer.Option(D.save, "--save", help="Write the bit-packed quantized weights to this .safetensors file."),
        load: Optional[str] = typer.Option(D.load, "--load", help="Evaluate a file written by --save instead of quantizing (MODEL defaults to the model it was saved from)."),
        eval_datasets: Optional[str] = typer.Option(None, "--eval", help="Comma-separated evaluation data sets, e.g. wikitext2,ptb-new,c4-new \\[default: DATASET]."),
        eval_batch_size: int = typer.Option(D.eval_batch_size, "--eval-batch-size", help="Windows per evaluation batch."),
        max_eval_windows: Optional[int] = typer.Option(D.max_eval_windows, "--max-eval-windows", help="Evaluate on at most N windows per data set (quick checks) \\[default: all]."),
        baseline: bool = typer.Option(D.baseline, "--baseline/--no-baseline", help="Also measure the unquantized model's perplexity in the same run."),
        data_dir: str = typer.Option(D.data_dir, "--data-dir", envvar="RLO_DATA", help="Folder searched for wikitext2, ptb and c4 files."),
        device: str = typer.Option(D.device, "--device", help="auto, cpu or cuda."),
        trust_remote_code: bool = typer.Option(D.trust_remote_code, "--trust-remote-code", help="Allow model code from the model's repository to run. Only for models you trust."),
        name: Optional[str] = typer.Option(D.name, "--name", help="Run name \\[default: model-method-bits]."),
        runs_dir: Optional[str] = typer.Option(D.runs_dir, "--runs-dir", envvar="RLO_RUNS_DIR", help="Folder for run directories \\[default: ./runs]."),
        profile: Optional[str] = profile_option("for example quip-2bit"),
        save_profile: Optional[str] = save_profile_option(),
        print_config: bool = print_config_option(),
    ) -> None:
        """Quantize a causal language model's linear layers and measure perplexity."""
        config = resolve_command_config(ctx, QuantizeConfig, "quantize", dict(locals()),
                                        profile=profile, save_profile=save_profile,
                                        print_config=print_config)
        if config is None:
            return
        from rlo_cli.common import console
        from rlo_core.quant.pipeline import run_quantize
        from rlo_core.quant.report import rich_table

        result = run_quantize(config)
        console.print(rich_table(result.rows, result.datasets,
                                 title=f"rlo quantize (seqlen {result.seqlen})"))
        if result.checkpoint_bytes and result.fp16_bytes:
            verb = "Loaded" if config.load else "Saved"
            console.print(f"{verb} {result.checkpoint}: {result.checkpoint_bytes:,} bytes, "
                          f"{result.checkpoint_bytes / result.fp16_bytes:.3f} x the float16 size "
                          f"({result.fp16_bytes:,} bytes) of the quantized weights.",
                          highlight=False)
        if result.reproduced is not None:
            console.print("Perplexity " + ("equals" if result.reproduced else "DIFFERS from")
                          + f" the value measured at save time: {result.saved_perplexity}.",
                          highlight=False)
        console.print(f"Run directory: {result.run_dir}", highlight=False)
