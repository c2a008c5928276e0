"""`rlo train`: image classification with ce, focal, rlo or rlo-convex."""

from __future__ import annotations

from pathlib import Path
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
from rlo_core.train.config import TrainConfig

if TYPE_CHECKING:
    from rlo_cli.launch_report import JobRuns

D = TrainConfig()


def register(app: typer.Typer) -> None:
    @app.command("train")
    @handle_errors
    def train(
        ctx: typer.Context,
        dataset: str = typer.Option(D.dataset, "--dataset", help="digits, cifar10, cifar100, tiny-imagenet, food-101, imagenet1k, imagefolder:PATH or hf:PATH."),
        net: str = typer.Option(D.net, "--net", help="Network name (case-insensitive); 'rlo models' lists them."),
        loss: str = typer.Option(D.loss, "--loss", help="rlo, rlo-convex, ce or focal."),
        k: float = typer.Option(D.k, "--k", help="Root k of the rooted loss (> 0)."),
        m: float = typer.Option(D.m, "--m", help="Scale m of the rooted loss (> 0)."),
        focal_alpha: float = typer.Option(D.focal_alpha, "--focal-alpha", help="Focal loss alpha."),
        focal_gamma: float = typer.Option(D.focal_gamma, "--focal-gamma", help="Focal loss gamma."),
        epochs: int = typer.Option(D.epochs, "--epochs", "--n-epochs", help="Number of epochs."),
        batch_size: int = typer.Option(D.batch_size, "--batch-size", "--bs", help="Images per optimizer step (all processes together)."),
        lr: Optional[float] = typer.Option(D.lr, "--lr", help="Learning rate \\[default: 1e-3 for ResNet/VGG, 1e-4 for transformers]."),
        optimizer: str = typer.Option(D.optimizer, "--optimizer", "--opt", help="adam, sgd or adamw."),
        weight_decay: float = typer.Option(D.weight_decay, "--weight-decay", help="Weight decay."),
        momentum: float = typer.Option(D.momentum, "--momentum", help="SGD momentum."),
        image_size: Optional[int] = typer.Option(D.image_size, "--image-size", "--size", help="Input size in pixels \\[default: the data set's]."),
        patch: Optional[int] = typer.Option(D.patch, "--patch", help="Patch size in pixels (window size for Swin at 64 px or less) \\[default: the net's own, 4 for vit]."),
        dim_head: Optional[int] = typer.Option(D.dim_head, "--dim-head", "--dimhead", help="Transformer embedding width \\[default: the net's own, 512 for vit]."),
        pretrained: Optional[str] = typer.Option(D.pretrained, "--pretrained", help="Local weights file or folder for pretrained nets (vit_timm)."),
        aug: bool = typer.Option(D.aug, "--aug/--no-aug", help="RandAugment (N=2, M=14) on top of the random crop and flip; --no-aug keeps only crop and flip."),
        amp: bool = typer.Option(D.amp, "--amp/--no-amp", help="Mixed precision on CUDA (bf16 where supported, else fp16)."),
        sync_bn: bool = typer.Option(D.sync_bn, "--sync-bn", help="Synchronized batch norm in distributed runs."),
        grad_accum: int = typer.Option(D.grad_accum, "--grad-accum", help="Micro-batches per optimizer step."),
        seed: int = typer.Option(D.seed, "--seed", help="Random seed."),
        data_dir: str = typer.Option(D.data_dir, "--data-dir", envvar="RLO_DATA", help="Folder holding the data sets."),
        download: bool = typer.Option(D.download, "--download", help="Download the data set with torchvision when the network allows it."),
        device: str = typer.Option(D.device, "--device", help="auto, cpu or cuda."),
        workers: Optional[int] = typer.Option(D.workers, "--workers", help="DataLoader worker processes \\[default: from the CPU count]."),
        max_steps: Optional[int] = typer.Option(D.max_steps, "--max-steps", help="Stop after this many optimizer steps (smoke runs)."),
        log_every: int = typer.Option(D.log_every, "--log-every", help="Log training metrics every N steps."),
        name: Optional[str] = typer.Option(D.name, "--name", help="Run name \\[default: dataset-net-loss]."),
        runs_dir: Optional[str] = typer.Option(D.runs_dir, "--runs-dir", envvar="RLO_RUNS_DIR", help="Folder for run directories \\[default: ./runs]."),
        tensorboard: bool = typer.Option(D.tensorboard, "--tensorboard", help="Also write TensorBoard event files."),
        profile: Optional[str] = profile_option(),
        save_profile: Optional[str] = save_profile_option(),
        print_config: bool = print_config_option(),
        resume: Optional[str] = typer.Option(None, "--resume", help="Continue a run: its directory, name, or 'last'."),
        nproc: int = launch.nproc_option(),
        nnodes: str = launch.nnodes_option(),
        node_rank: int = launch.node_rank_option(),
        master_addr: Optional[str] = launch.master_addr_option(),
        master_port: Optional[int] = launch.master_port_option(),
        rdzv_endpoint: Optional[str] = launch.rdzv_endpoint_option(),
        rdzv_id: Optional[str] = launch.rdzv_id_option(),
        tui: bool = tui_option(),
        list_nets: bool = typer.Option(False, "--list-nets", help="List the networks and exit."),
    ) -> None:
        """Train an image classifier."""
        if list_nets:
            from rlo_cli.commands.models import print_models_table

            print_models_table(dataset=dataset)
            return
        if tui and not launch.inside_torchrun():
            from rlo_cli.tui.launch import dashboard_for_command

            raise typer.Exit(dashboard_for_command(runs_dir))
        values, distributed, start_distributed = launch.split_launch_options(dict(locals()))
        if start_distributed and resume is not None:
            from rlo_core.runs import resolve_run

            run_dir = resolve_run(resume, Path(runs_dir) if runs_dir else None, command="train")
            start_workers(distributed, distributed.job_runs("train", runs_dir, run_dir))
            return
        if resume is not None:
            from rlo_cli.common import explicit_options
            from rlo_core.train.pipeline import resume_train

            result = resume_train(resume, overrides=explicit_options(ctx, values),
                                  runs_dir=runs_dir)
            print_summary(result)
            return
        config = resolve_command_config(ctx, TrainConfig, "train", values, profile=profile,
                                        save_profile=save_profile, print_config=print_config)
        if config is None:
            return
        if start_distributed:
            # One clear error here instead of one per process.
            from rlo_core.train.pipeline import micro_batch_size

            config.validate()
            micro_batch_size(config, distributed.max_processes)
            start_workers(distributed, distributed.job_runs("train", config.runs_dir))
            return
        from rlo_core.train.pipeline import run_train

        print_summary(run_train(config))


def start_workers(options: "launch.LaunchOptions", runs: "JobRuns") -> None:
    """Run this same command line on `options.nproc` processes through torchrun."""
    launch.launch(options, launch.current_argv(), "train", runs=runs, interrupt_note=(
        "every process was asked to stop after its current step, and rank 0 saves a checkpoint "
        "first."))


def print_summary(result) -> None:
    """Print the final metrics table and where the run was saved (rank 0 only)."""
    if not launch.is_main_rank():
        return
    from rich.table import Table

    from rlo_cli.common import console

    table = Table(title="Training finished")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("final test accuracy", f"{result.final_acc:.4f}")
    table.add_row("best test accuracy", f"{result.best_acc:.4f}")
    table.add_row("final test cross-entropy", f"{result.final_ce:.4f}")
    table.add_row("epochs", str(result.epochs_done))
    table.add_row("optimizer steps", str(result.steps))
    console.print(table)
    if result.run_dir is not None:
        console.print(f"Run saved in {result.run_dir}", highlight=False)
