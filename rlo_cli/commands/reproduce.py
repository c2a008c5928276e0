"""`rlo reproduce convergence|quantization|gan`: the RLO claims, one command each."""

from __future__ import annotations

from typing import Optional

import typer

from rlo_cli.common import (
    console,
    handle_errors,
    print_config_option,
    profile_option,
    resolve_command_config,
    save_profile_option,
)
from rlo_core.reproduce.convergence import ConvergenceConfig
from rlo_core.reproduce.gan import GanReproductionConfig
from rlo_core.reproduce.quantization import QuantizationConfig

app = typer.Typer(no_args_is_help=True)

C = ConvergenceConfig()
Q = QuantizationConfig()
G = GanReproductionConfig()

OUTPUT_HELP = "Also copy the JSON, Markdown table and PNG into this folder (for example docs/reproduce)."
RUNS_DIR_HELP = "Folder for run directories \\[default: ./runs]."


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="reproduce",
                   help="Reproduce the RLO claims: convergence speed, quantization, GAN FID.")


def _print_result(markdown: str, run_dir, copied) -> None:
    from rich.markdown import Markdown

    console.print(Markdown(markdown))
    console.print(f"Results in {run_dir}")
    for path in copied:
        console.print(f"Copied to {path}")


@app.command("convergence")
@handle_errors
def convergence(
    ctx: typer.Context,
    dataset: str = typer.Option(C.dataset, "--dataset", help="Any data set of 'rlo train'."),
    net: str = typer.Option(C.net, "--net", help="Network name; 'rlo models' lists them."),
    losses: str = typer.Option(",".join(C.losses), "--losses", help="Comma-separated losses to compare."),
    seeds: int = typer.Option(C.seeds, "--seeds", help="Number of seeds per loss."),
    first_seed: int = typer.Option(C.first_seed, "--first-seed", help="Seed of the first run; the others follow."),
    epochs: int = typer.Option(C.epochs, "--epochs", help="Epochs per run (cosine schedule over them)."),
    batch_size: int = typer.Option(C.batch_size, "--batch-size", help="Images per optimizer step."),
    lr: Optional[float] = typer.Option(C.lr, "--lr", help="Learning rate \\[default: the net family's]."),
    optimizer: str = typer.Option(C.optimizer, "--optimizer", help="adam, sgd or adamw."),
    image_size: Optional[int] = typer.Option(C.image_size, "--image-size", help="Input size in pixels \\[default: the data set's]."),
    patch: int = typer.Option(C.patch, "--patch", help="ViT patch size in pixels."),
    dim_head: int = typer.Option(C.dim_head, "--dim-head", help="Transformer embedding width."),
    aug: bool = typer.Option(C.aug, "--aug/--no-aug", help="Data augmentation."),
    k: float = typer.Option(C.k, "--k", help="Root k of rlo and rlo-convex."),
    m: float = typer.Option(C.m, "--m", help="Scale m of rlo."),
    focal_alpha: float = typer.Option(C.focal_alpha, "--focal-alpha", help="Focal loss alpha."),
    focal_gamma: float = typer.Option(C.focal_gamma, "--focal-gamma", help="Focal loss gamma."),
    target_acc: float = typer.Option(C.target_acc, "--target-acc", help="Test accuracy (a fraction) for the epochs-to-target column."),
    data_dir: str = typer.Option(C.data_dir, "--data-dir", envvar="RLO_DATA", help="Folder holding the data sets."),
    device: str = typer.Option(C.device, "--device", help="auto, cpu or cuda."),
    workers: Optional[int] = typer.Option(C.workers, "--workers", help="DataLoader worker processes \\[default: from the CPU count]."),
    max_steps: Optional[int] = typer.Option(C.max_steps, "--max-steps", help="Stop each run after this many steps (smoke runs)."),
    keep_checkpoints: bool = typer.Option(C.keep_checkpoints, "--keep-checkpoints", help="Keep each run's checkpoints (deleted by default to save disk)."),
    output: Optional[str] = typer.Option(C.output, "--output", help=OUTPUT_HELP),
    name: Optional[str] = typer.Option(C.name, "--name", help="Run name."),
    runs_dir: Optional[str] = typer.Option(C.runs_dir, "--runs-dir", envvar="RLO_RUNS_DIR", help=RUNS_DIR_HELP),
    profile: Optional[str] = profile_option(),
    save_profile: Optional[str] = save_profile_option(),
    print_config: bool = print_config_option(),
) -> None:
    """Train one net with each loss over several seeds; compare accuracy and epochs to target."""
    config = resolve_command_config(ctx, ConvergenceConfig, "reproduce-convergence", dict(locals()),
                                    profile=profile, save_profile=save_profile,
                                    print_config=print_config)
    if config is None:
        return
    from rlo_core.reproduce.convergence import run_convergence

    result = run_convergence(config)
    _print_result(result.markdown, result.run_dir, result.copied)


@app.command("quantization")
@handle_errors
def quantization(
    ctx: typer.Context,
    model: str = typer.Option(Q.model, "--model", help="Starting model: a folder, a Hugging Face cache name, or the tiny-opt preset."),
    dataset: str = typer.Option(Q.dataset, "--dataset", help="Text data set of 'rlo finetune' (wikitext2, ptb, c4, pydoc, text:PATH)."),
    data_dir: str = typer.Option(Q.data_dir, "--data-dir", envvar="RLO_DATA", help="Folder holding the data sets."),
    losses: str = typer.Option(",".join(Q.losses), "--losses", help="Comma-separated finetuning losses."),
    k: float = typer.Option(Q.k, "--k", help="Root k of rlo."),
    m: float = typer.Option(Q.m, "--m", help="Scale m of rlo."),
    pretrain_steps: int = typer.Option(Q.pretrain_steps, "--pretrain-steps", help="First train the starting model with ce for this many steps (for a randomly initialized preset); 0 skips it."),
    pretrain_lr: float = typer.Option(Q.pretrain_lr, "--pretrain-lr", help="Learning rate of that first training."),
    epochs: float = typer.Option(Q.epochs, "--epochs", help="Finetuning epochs."),
    max_steps: Optional[int] = typer.Option(Q.max_steps, "--max-steps", help="Stop each finetuning after this many optimizer steps."),
    lr: float = typer.Option(Q.lr, "--lr", help="Finetuning learning rate."),
    warmup_steps: int = typer.Option(Q.warmup_steps, "--warmup-steps", help="Linear warmup steps."),
    block_size: int = typer.Option(Q.block_size, "--block-size", help="Tokens per training block."),
    batch_size: int = typer.Option(Q.batch_size, "--batch-size", help="Blocks per micro-batch."),
    grad_accum: int = typer.Option(Q.grad_accum, "--grad-accum", help="Micro-batches per optimizer step."),
    seed: int = typer.Option(Q.seed, "--seed", help="Random seed of finetuning and calibration."),
    bits: str = typer.Option(",".join(str(b) for b in Q.bits), "--bits", help="Comma-separated weight bit widths (2, 3, 4)."),
    quant: str = typer.Option(Q.quant, "--quant", help="nearest, gptq, ldlq or ldlqRG."),
    incoh_processing: bool = typer.Option(Q.incoh_processing, "--incoh-processing/--no-incoh-processing", help="Incoherence processing before rounding."),
    nsamples: int = typer.Option(Q.nsamples, "--nsamples", help="Calibration windows."),
    seqlen: Optional[int] = typer.Option(Q.seqlen, "--seqlen", help="Tokens per calibration and evaluation window \\[default: the model's context]."),
    max_eval_windows: Optional[int] = typer.Option(Q.max_eval_windows, "--max-eval-windows", help="Evaluate at most this many test windows."),
    max_eval_blocks: Optional[int] = typer.Option(Q.max_eval_blocks, "--max-eval-blocks", help="Validation blocks evaluated during finetuning."),
    adapter_bits: str = typer.Option(",".join(str(b) for b in Q.adapter_bits), "--adapter-bits", help="Comma-separated bit widths at which each quantized model is also finetuned in quantized space (LoRA adapters); empty to skip."),
    adapter_steps: int = typer.Option(Q.adapter_steps, "--adapter-steps", help="Optimizer steps of quantized-space finetuning."),
    adapter_lr: float = typer.Option(Q.adapter_lr, "--adapter-lr", help="Learning rate of quantized-space finetuning."),
    device: str = typer.Option(Q.device, "--device", help="auto, cpu or cuda."),
    output: Optional[str] = typer.Option(Q.output, "--output", help=OUTPUT_HELP),
    name: Optional[str] = typer.Option(Q.name, "--name", help="Run name."),
    runs_dir: Optional[str] = typer.Option(Q.runs_dir, "--runs-dir", envvar="RLO_RUNS_DIR", help=RUNS_DIR_HELP),
    profile: Optional[str] = profile_option(),
    save_profile: Optional[str] = save_profile_option(),
    print_config: bool = print_config_option(),
) -> None:
    """Finetune with ce and rlo, quantize both, compare perplexity degradation."""
    config = resolve_command_config(ctx, QuantizationConfig, "reproduce-quantization",
                                    dict(locals()), profile=profile, save_profile=save_profile,
                                    print_config=print_config)
    if config is None:
        return
    from rlo_core.reproduce.quantization import run_quantization

    result = run_quantization(config)
    _print_result(result.markdown, result.run_dir, result.copied)


@app.command("gan")
@handle_errors
def gan(
    ctx: typer.Context,
    dataset: str = typer.Option(G.dataset, "--dataset", help="digits or imagefolder:PATH."),
    losses: str = typer.Option(",".join(G.losses), "--losses", help="Comma-separated GAN losses (ce, rlo)."),
    seeds: int = typer.Option(G.seeds, "--seeds", help="Number of seeds per loss."),
    first_seed: int = typer.Option(G.first_seed, "--first-seed", help="Seed of the first run."),
    k: float = typer.Option(G.k, "--k", help="Root k of the rooted logistic GAN loss."),
    kimg: float = typer.Option(G.kimg, "--kimg", help="Training length in thousands of real images."),
    tick: float = typer.Option(G.tick, "--tick", help="Thousands of images per tick."),
    snap: int = typer.Option(G.snap, "--snap", help="Ticks between FID evaluations."),
    batch: int = typer.Option(G.batch, "--batch", help="Images per step."),
    resolution: int = typer.Option(G.resolution, "--resolution", help="Image size in pixels (a power of two)."),
    arch: str = typer.Option(G.arch, "--arch", help="dcgan or stylegan2-lite."),
    z_dim: int = typer.Option(G.z_dim, "--z-dim", help="Latent size."),
    w_dim: int = typer.Option(G.w_dim, "--w-dim", help="Intermediate latent size (stylegan2-lite)."),
    channel_base: int = typer.Option(G.channel_base, "--channel-base", help="Feature maps of the block at resolution r: channel_base / r, capped at --channel-max."),
    channel_max: int = typer.Option(G.channel_max, "--channel-max", help="Maximum feature maps of any block."),
    fid_samples: int = typer.Option(G.fid_samples, "--fid-samples", help="Generated images per FID."),
    fid_inception: Optional[str] = typer.Option(G.fid_inception, "--fid-inception", help="Inception-v3 weights file for standard FID \\[default: a feature classifier trained on the data]."),
    fid_classifier_steps: int = typer.Option(G.fid_classifier_steps, "--fid-classifier-steps", help="Training steps of the feature classifier behind feature-space FID."),
    device: str = typer.Option(G.device, "--device", help="auto, cpu or cuda."),
    output: Optional[str] = typer.Option(G.output, "--output", help=OUTPUT_HELP),
    name: Optional[str] = typer.Option(G.name, "--name", help="Run name."),
    runs_dir: Optional[str] = typer.Option(G.runs_dir, "--runs-dir", envvar="RLO_RUNS_DIR", help=RUNS_DIR_HELP),
    profile: Optional[str] = profile_option(),
    save_profile: Optional[str] = save_profile_option(),
    print_config: bool = print_config_option(),
) -> None:
    """Train the GAN with ce and rlo on the same data and seeds; compare FID against kimg."""
    config = resolve_command_config(ctx, GanReproductionConfig, "reproduce-gan", dict(locals()),
                                    profile=profile, save_profile=save_profile,
                                    print_config=print_config)
    if config is None:
        return
    from rlo_core.reproduce.gan import run_gan_reproduction

    result = run_gan_reproduction(config)
    _print_result(result.markdown, result.run_dir, result.copied)
