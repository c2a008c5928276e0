"""`run_train(config)`: build data, net, loss and optimizer, then train in a run directory."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from rlo_core.config.schema import to_dict, validate_options
from rlo_core.errors import ConfigError
from rlo_core.runs import Run, resolve_run
from rlo_core.train.callbacks import Callback, ProgressCallback, RunCallback
from rlo_core.train.config import TrainConfig
from rlo_core.train.distributed import (DistributedContext, broadcast_from_main,
                                        init_distributed, main_process_first, nproc_flag,
                                        shutdown_distributed, world_size_from_env)
from rlo_core.train.sampling import ResumableSampler, SeededDataset
from rlo_core.train.trainer import Trainer

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Optional[Path]
    best_acc: float
    final_acc: float
    final_ce: float
    epochs_done: int
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def select_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but CUDA is not available (no GPU or a "
                          "CPU-only torch build). Use --device cpu or --device auto.")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def amp_dtype_for(device: torch.device, enabled: bool) -> Optional[torch.dtype]:
    """Mixed precision on CUDA only: bf16 where supported, else fp16 with a GradScaler."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def default_workers(device: torch.device) -> int:
    cpus = os.cpu_count() or 1
    return min(8, max(cpus - 1, 0)) if device.type == "cuda" else min(4, cpus // 2)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(config: TrainConfig, parameters, lr: float):
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(parameters, lr=lr, weight_decay=config.weight_decay)


def micro_batch_size(config: TrainConfig, world_size: int) -> int:
    """Return the images per micro-batch on each process, raising when `--batch-size` does
    not split evenly into `--grad-accum` micro-batches on `world_size` processes."""
    parts = config.grad_accum * world_size
    micro_batch = config.batch_size // parts
    if micro_batch < 1:
        raise ConfigError(
            f"--batch-size {config.batch_size} is too small for --grad-accum {config.grad_accum} "
            f"on {world_size} processes: each micro-batch needs at least one image.")
    if micro_batch * parts != config.batch_size:
        raise ConfigError(
            f"--batch-size {config.batch_size} does not split evenly into --grad-accum "
            f"{config.grad_accum} x {world_size} process(es) = {parts} micro-batches, so a "
            f"step would train {micro_batch * parts} images. Use a multiple of {parts}, such as "
            f"{micro_batch * parts}.")
    return micro_batch


def _loaders(dataset, config: TrainConfig, device: torch.device, dist: DistributedContext):
    micro_batch = micro_batch_size(config, dist.world_size)
    workers = default_workers(device) if config.workers is None else config.workers
    common = {"num_workers": workers, "pin_memory": device.type == "cuda",
              "persistent_workers": workers > 0}
    sampler = ResumableSampler(len(dataset.train), shuffle=True, seed=config.seed,
                               rank=dist.rank, world_size=dist.world_size)
    train_loader = DataLoader(SeededDataset(dataset.train), batch_size=micro_batch,
                              sampler=sampler, **common)
    test_set = dataset.test
    if dist.enabled:
        # Rank r scores images r, r+W, r+2W, ..., so each image counts once in the
        # all-reduced sums. DistributedSampler would repeat images to even out the shards.
        test_set = Subset(dataset.test, range(dist.rank, len(dataset.test), dist.world_size))
    test_loader = DataLoader(test_set, batch_size=micro_batch * config.grad_accum,
                             shuffle=False, **common)
    return train_loader, sampler, test_loader


def run_train(config: TrainConfig, *, callbacks: list[Callback] | None = None,
              resume_dir: Path | None = None) -> TrainResult:
    """Train `config.net` on `config.dataset` and return the final metrics."""
    from rlo_core.data import DataOptions, build_dataset, dataset_spec
    from rlo_core.losses import build_loss
    from rlo_core.models import (NetOptions, check_net_input, create_net, net_spec,
                                 preferred_image_size)

    config.validate()
    spec, data_spec = net_spec(config.net), dataset_spec(config.dataset)
    device = select_device(config.device)
    if config.sync_bn and device.type != "cuda" and world_size_from_env() > 1:
        raise ConfigError("--sync-bn needs CUDA devices: torch's SyncBatchNorm does not run on "
                          "CPU. Drop --sync-bn for a CPU run (each process then normalizes "
                          "over its own part of the batch).")
    dist = init_distributed(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    image_size = preferred_image_size(config.net, config.image_size, data_spec.image_size)
    net_options = dict(patch=config.patch, dim_head=config.dim_head, pretrained=config.pretrained)
    # Fail on an incompatible size before loading any data.
    check_net_input(config.net, NetOptions(num_classes=data_spec.num_classes or 2,
                                           image_size=image_size, **net_options))
    seed_everything(config.seed + dist.rank)

    preparation = main_process_first(dist) if config.download else contextlib.nullcontext()
    with preparation:
        # Only rank 0 downloads. The other ranks then find the files in place, or fail with
        # a "not found" error when their machine does not share rank 0's data folder.
        dataset = build_dataset(config.dataset, DataOptions(
            data_dir=Path(config.data_dir), image_size=image_size, aug=config.aug,
            download=config.download and dist.is_main, seed=config.seed))
    model = create_net(config.net, dataset.num_classes, dataset.image_size, **net_options)
    model.to(device)
    if config.sync_bn and dist.enabled:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if dist.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    lr = config.lr if config.lr is not None else spec.default_lr
    try:
        loss_fn = build_loss(config.loss, k=config.k, m=config.m, alpha=config.focal_alpha,
                             gamma=config.focal_gamma)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    optimizer = build_optimizer(config, model.parameters(), lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    train_loader, sampler, test_loader = _loaders(dataset, config, device, dist)

    if resume_dir is not None:
        run = Run.open(resume_dir, active=dist.is_main)
        run.config = to_dict(config)
        if dist.is_main:
            run.write_config()
    else:
        run = Run.create("train", config.name or config.default_name(), to_dict(config),
                         runs_dir=Path(config.runs_dir) if config.runs_dir else None,
                         active=dist.is_main)
        # Only rank 0 created the directory; the others take its path for messages.
        run.dir = Path(broadcast_from_main(str(run.dir), dist))
    run_callbacks: list[Callback] = []
    if dist.is_main:
        run_callbacks = [RunCallback(run), ProgressCallback(config.log_every)]
        if config.tensorboard:
            from rlo_core.train.tensorboard_callback import TensorBoardCallback

            run_callbacks.append(TensorBoardCallback(run.dir / "tensorboard"))
    trainer = Trainer(
        model=model, loss_fn=loss_fn, optimizer=optimizer, scheduler=scheduler,
        train_loader=train_loader, sampler=sampler, test_loader=test_loader, device=device,
        epochs=config.epochs, grad_accum=config.grad_accum,
        amp_dtype=amp_dtype_for(device, config.amp), max_steps=config.max_steps,
        seed=config.seed, log_every=config.log_every, checkpoint_dir=run.checkpoint_dir,
        callbacks=run_callbacks + list(callbacks or []),
        resume_hint=f"Resume with: rlo train {nproc_flag(dist)}--resume {run.dir}",
        rank=dist.rank, world_size=dist.world_size)
    if resume_dir is not None:
        trainer.load(run.checkpoint_dir / "last.pt")
        run.truncate_metrics(trainer.step)
        log.info("Resuming %s at epoch %d, step %d", run.dir, trainer.epoch + 1, trainer.step)

    log.info("Training %s (%s) on %s: %d train / %d test images, %d classes, %d px, loss %s, "
             "lr %g, device %s", config.net, f"{sum(p.numel() for p in model.parameters()):,} "
             "parameters", dataset.name, len(dataset.train), len(dataset.test),
             dataset.num_classes, dataset.image_size, config.loss, lr, device)
    try:
        with run:
            state = trainer.fit()
            run.update(best_metric=state.best_acc, best_metric_name="test acc")
    finally:
        shutdown_distributed()
    last = state.history[-1] if state.history else {"acc": float("nan"), "ce": float("nan")}
    return TrainResult(run_dir=run.dir if dist.is_main else None, best_acc=state.best_acc,
                       final_acc=last["acc"], final_ce=last["ce"], epochs_done=state.epoch,
                       steps=state.step, history=state.history)


def resume_train(reference: str, *, overrides: dict[str, Any] | None = None,
                 runs_dir: str | None = None, callbacks: list[Callback] | None = None
                 ) -> TrainResult:
    """Continue the run `reference` (a directory, a name or 'last') from checkpoints/last.pt,
    with its saved configuration and any `overrides` (for example more epochs)."""
    import yaml

    run_dir = resolve_run(reference, Path(runs_dir) if runs_dir else None, command="train")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    if saved.get("command") != "train":
        raise ConfigError(f"Run {run_dir} is a '{saved.get('command')}' run, not a train run. "
                          f"Resume it with 'rlo {saved.get('command')} --resume {run_dir}'.")
    options = {k: v for k, v in saved.items() if k not in ("command", "environment")}
    options = validate_options(TrainConfig, options, source=str(run_dir / "config.yaml"))
    options.update(validate_options(TrainConfig, overrides or {}, source="the command line"))
    config = replace(TrainConfig(), **options)
    return run_train(config, callbacks=callbacks, resume_dir=run_dir)
