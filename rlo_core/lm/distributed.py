"""Finetuning on several processes: the Trainer's DDP, or FSDP through accelerate.

Started by torchrun (`rlo finetune --nproc N`), every rank runs the same pipeline. The
process group is joined before anything else, so rank 0 alone creates the run directory and
the others take its path. The Trainer then wraps the model in DistributedDataParallel, or
shards it with FSDP2 when `fsdp` is set, and splits each batch's data by rank.
"""

from __future__ import annotations

from typing import Any

from rlo_core.errors import ConfigError
from rlo_core.lm.config import FinetuneConfig
from rlo_core.train.distributed import (DistributedContext, collective_timeout, init_distributed,
                                        world_size_from_env)


def check_distributed_options(config: FinetuneConfig, device: str, world: int) -> None:
    """Reject options that do not suit a job of `world` processes on `device`."""
    if config.quantized and world > 1:
        raise ConfigError(
            f"--quantized finetuning runs in one process, but this job has {world} processes. "
            "Drop --nproc (adapters on a low-bit model are small enough for one device).")
    if config.fsdp:
        if device != "cuda":
            raise ConfigError(
                "--fsdp needs CUDA GPUs: accelerate shards a model only across GPUs, and on CPU "
                "it would silently fall back to full copies. On CPU drop --fsdp; --nproc N "
                "alone trains with DistributedDataParallel.")
        if world < 2:
            raise ConfigError(
                "--fsdp shards the model across processes, but this job has one. Add --nproc N "
                "(one process per GPU), or drop --fsdp for a model that fits one GPU.")


def start_distributed(config: FinetuneConfig, device: str) -> DistributedContext:
    """Check that the options suit the process count, then join the process group."""
    check_distributed_options(config, device, world_size_from_env())
    return init_distributed(device)


def distributed_arguments(config: FinetuneConfig, dist: DistributedContext) -> dict[str, Any]:
    """Return the TrainingArguments keywords for a job of `dist.world_size` processes."""
    if not dist.enabled:
        return {}
    arguments: dict[str, Any] = {
        "ddp_timeout": int(collective_timeout().total_seconds()),
        # Every parameter of a causal LM gets a gradient, so DDP's search for unused ones
        # would only cost a graph traversal per step.
        "ddp_find_unused_parameters": False,
    }
    if config.fsdp:
        # FSDP2 wraps each decoder layer (the model's _no_split_modules). Checkpoints and the
        # saved model contain the full, unsharded weights, so they load in a single process.
        arguments["fsdp"] = True
        arguments["fsdp_config"] = {"version": 2, "reshard_after_forward": True,
                                    "state_dict_type": "FULL_STATE_DICT"}
    return arguments


def save_trained_model(trainer: Any, tokenizer: Any, folder, dist: DistributedContext) -> None:
    """Save the full model from rank 0 and wait for it on every rank.

    Under FSDP every rank takes part in gathering the full state dict first.
    """
    import torch

    from rlo_core.lm.models import save_causal_lm

    state_dict = None
    model = trainer.model
    if getattr(trainer, "is_fsdp_enabled", False):
        state_dict = trainer.accelerator.get_state_dict(trainer.model)
        model = trainer.accelerator.unwrap_model(trainer.model)
    if dist.is_main:
        save_causal_lm(model, tokenizer, folder, state_dict=state_dict)
    if dist.enabled:
        torch.distributed.barrier()
