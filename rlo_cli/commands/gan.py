"""`rlo gan`: GAN training with the rooted logistic loss, and `rlo gan generate`."""

from __future__ import annotations

from typing import Optional

import typer

from rlo_cli.common import (
    handle_errors,
    print_config_option,
    profile_option,
    resolve_command_config,
    save_profile_option,
    tui_option,
)
from rlo_core.gan.config import GanConfig

D = GanConfig()

app = typer.Typer(
    help="Train a GAN with the rooted logistic loss (or the logistic loss), StyleGAN2-ADA style. "
         "Without a subcommand, 'rlo gan [OPTIONS]' trains; 'rlo gan generate' samples a "
         "snapshot.",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode="rich",
)


@app.callback(invoke_without_command=True)
@handle_errors
def gan(
    ctx: typer.Context,
    dataset: str = typer.Option(D.dataset, "--dataset", help="digits (offline) or imagefolder:PATH (a folder of images, searched recursively)."),
    loss: str = typer.Option(D.loss, "--loss", help="rlo: k*(1+exp(-t))^(1/k) on margins t; ce: the logistic (softplus) non-saturating loss."),
    k: float = typer.Option(D.k, "--k", help="Root k of the rooted logistic loss (> 0)."),
    kimg: float = typer.Option(D.kimg, "--kimg", help="Training length in thousands of real images shown to the discriminator."),
    tick: float = typer.Option(D.tick, "--tick", help="Thousands of images per tick (one log line and one train record per tick)."),
    snap: int = typer.Option(D.snap, "--snap", help="Ticks between snapshots: fakes grid, network snapshot, FID and resume checkpoint."),
    batch: int = typer.Option(D.batch, "--batch", help="Images per step, for reals and for fakes."),
    resolution: int = typer.Option(D.resolution, "--resolution", help="Image size in pixels, a power of two from 8 to 1024."),
    arch: str = typer.Option(D.arch, "--arch", help="dcgan or stylegan2-lite."),
    z_dim: int = typer.Option(D.z_dim, "--z-dim", help="Latent (z) dimension."),
    w_dim: int = typer.Option(D.w_dim, "--w-dim", help="Intermediate latent (w) dimension of stylegan2-lite."),
    mapping_layers: int = typer.Option(D.mapping_layers, "--mapping-layers", help="Layers of the stylegan2-lite mapping network."),
    channel_base: int = typer.Option(D.channel_base, "--channel-base", help="Feature maps of the block at resolution r: channel_base / r, capped at --channel-max."),
    channel_max: int = typer.Option(D.channel_max, "--channel-max", help="Maximum feature maps of any block."),
    lr: float = typer.Option(D.lr, "--lr", help="Adam learning rate of G and D (betas 0, 0.99)."),
    r1_gamma: float = typer.Option(D.r1_gamma, "--r1-gamma", help="R1 penalty weight gamma on reals (0 turns R1 off)."),
    r1_interval: int = typer.Option(D.r1_interval, "--r1-interval", help="Steps between lazy R1 steps."),
    ema_kimg: float = typer.Option(D.ema_kimg, "--ema-kimg", help="Half-life of the EMA generator in thousands of images."),
    ema_rampup: Optional[float] = typer.Option(D.ema_rampup, "--ema-rampup", help="EMA half-life ramp-up as a fraction of the images seen so far."),
    augment: str = typer.Option(D.augment, "--augment", help="Augmentation of every image D sees: ada (adaptive probability), fixed (constant --augment-p) or none."),
    augment_p: float = typer.Option(D.augment_p, "--augment-p", help="Augmentation probability: the start value with ada, the constant with fixed."),
    ada_target: float = typer.Option(D.ada_target, "--ada-target", help="ADA target for the mean sign of D on reals; above it the augmentation probability rises."),
    ada_kimg: float = typer.Option(D.ada_kimg, "--ada-kimg", help="Thousands of images for the ADA probability to go from 0 to 1."),
    mirror: bool = typer.Option(D.mirror, "--mirror/--no-mirror", help="Flip real images horizontally at random."),
    max_images: Optional[int] = typer.Option(D.max_images, "--max-images", help="Use at most this many real images."),
    fid_samples: int = typer.Option(D.fid_samples, "--fid-samples", help="Generated images per FID (0 turns FID off)."),
    fid_inception: Optional[str] = typer.Option(D.fid_inception, "--fid-inception", help="torchvision Inception-v3 weights file (inception_v3_google-0cc3c7bd.pth) for the standard FID; without it FID is measured in the feature space of a classifier trained on the reals, not comparable to published FID."),
    fid_classifier_steps: int = typer.Option(D.fid_classifier_steps, "--fid-classifier-steps", help="Training steps of the feature-space FID classifier."),
    grid: int = typer.Option(D.grid, "--grid", help="The fakes grids show grid x grid images."),
    amp: bool = typer.Option(D.amp, "--amp/--no-amp", help="Mixed precision on CUDA (bf16 where supported, else fp16); ignored on CPU."),
    device: str = typer.Option(D.device, "--device", help="auto, cpu or cuda."),
    workers: int = typer.Option(D.workers, "--workers", help="Processes that decode an image folder."),
    seed: int = typer.Option(D.seed, "--seed", help="Random seed."),
    name: Optional[str] = typer.Option(D.name, "--name", help="Run name (default: dataset-resolution-arch-loss)."),
    runs_dir: Optional[str] = typer.Option(D.runs_dir, "--runs-dir", envvar="RLO_RUNS_DIR", help="Folder for run directories (default: ./runs)."),
    profile: Optional[str] = profile_option("gan-digits, gan-ffhq"),
    save_profile: Optional[str] = save_profile_option(),
    print_config: bool = print_config_option(),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a run: its directory, name, or 'last'."),
    tui: bool = tui_option(),
) -> None:
    """Train a GAN (generator and discriminator) on digits or an image folder."""
    if ctx.invoked_subcommand is not None:
        return
    if tui:
        from rlo_cli.tui.launch import dashboard_for_command

        raise typer.Exit(dashboard_for_command(runs_dir))
    values = dict(locals())
    if resume is not None:
        from rlo_cli.common import explicit_options
        from rlo_core.gan.pipeline import resume_gan

        overrides = explicit_options(ctx, values)
        overrides.pop("runs_dir", None)
        result = resume_gan(resume, overrides=overrides, runs_dir=runs_dir)
    else:
        config = resolve_command_config(ctx, GanConfig, "gan", values, profile=profile,
                                        save_profile=save_profile, print_config=print_config)
        if config is None:
            return
        from rlo_core.gan.pipeline import run_gan

        result = run_gan(config)
    _print_summary(result)


def _print_summary(result) -> None:
    from rlo_cli.common import console

    console.print(f"Run directory: {result.run_dir}", highlight=False, soft_wrap=True)
    console.print(f"Trained {result.kimg:.1f} kimg in {result.steps} steps "
                  f"({result.seconds:.0f} s).", highlight=False)
    if result.final_fid is not None:
        console.print(f"FID: {result.initial_fid if result.initial_fid is not None else float('nan'):.2f} "
                      f"at start, {result.final_fid:.2f} at the end, best "
                      f"{result.best_fid:.2f} ({result.fid_note}).", highlight=False,
                      soft_wrap=True)
    if result.final_snapshot is not None:
        console.print(f"Last snapshot: {result.final_snapshot}", highlight=False, soft_wrap=True)
    if result.final_grid is not None:
        console.print(f"Last grid: {result.final_grid}", highlight=False, soft_wrap=True)


@app.command("generate")
@handle_errors
def generate(
    network: str = typer.Option(..., "--network", help="A network-snapshot-NNNNNN.safetensors file from a 'rlo gan' run."),
    seeds: str = typer.Option("0-15", "--seeds", help="Seeds, one image each: ranges and lists such as 0-15 or 1,4,7-9."),
    output: str = typer.Option("grid.png", "--output", "-o", help="PNG file to write."),
    truncation: float = typer.Option(1.0, "--truncation", help="Truncation psi toward the mean w (stylegan2-lite only; 1 turns it off)."),
    columns: Optional[int] = typer.Option(None, "--columns", help="Images per grid row (default: as many as make the grid square)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Generate a grid of images from a network snapshot, one image per seed."""
    from rlo_core.gan.generate import GenerateConfig, generate_grid

    result = generate_grid(GenerateConfig(network=network, seeds=seeds, output=output,
                                          truncation=truncation, columns=columns, device=device))
    from rlo_cli.common import console

    console.print(f"Saved {len(result.seeds)} images to {result.output}", highlight=False,
                  soft_wrap=True)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="gan")
