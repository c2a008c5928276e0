"""torch.distributed set-up for runs started by torchrun (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from rlo_core.errors import ConfigError

log = logging.getLogger(__name__)

# A rank that hangs leaves the others blocked in a collective; this bounds the wait so the
# job fails with an error instead of hanging. It must also cover the longest time rank 0
# works alone while the others wait, which is writing a checkpoint (several GB for large
# models on a slow file system). A rank that exits or is killed is noticed sooner: torchrun
# stops the remaining ranks within a second.
TIMEOUT_ENV = "RLO_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 300.0
# Data preparation (a download on rank 0) can take far longer than one collective.
DATA_PREPARATION_TIMEOUT = datetime.timedelta(hours=6)


@dataclass
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def collective_timeout() -> datetime.timedelta:
    """Return the collective timeout: `RLO_DIST_TIMEOUT_S` seconds, default 300."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw:
        return datetime.timedelta(seconds=DEFAULT_TIMEOUT_S)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r} is invalid: set it to a positive number of "
                          f"seconds, or unset it for the default of {DEFAULT_TIMEOUT_S:g}.")
    return datetime.timedelta(seconds=seconds)


def world_size_from_env() -> int:
    """WORLD_SIZE as set by torchrun, or 1 outside a distributed job."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"The environment variable WORLD_SIZE={raw!r} is not an integer. "
                          "Unset it, or start the job with torchrun.") from None


def init_distributed(device_type: str) -> DistributedContext:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world_size = world_size_from_env()
    if world_size <= 1:
        return DistributedContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            available = torch.cuda.device_count()
            if local_rank >= available:
                raise ConfigError(
                    f"Local rank {local_rank} has no GPU: this machine shows {available} CUDA "
                    f"device(s). Start at most {available} processes per machine (--nproc "
                    f"{available}), or use --device cpu.")
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group(backend=backend, timeout=collective_timeout())
        log.info("Joined process group: rank %d of %d (%s)", rank, world_size, backend)
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size)


def nproc_flag(dist: DistributedContext) -> str:
    """`--nproc N ` for resume hints of a distributed run (N processes per machine)."""
    if not dist.enabled:
        return ""
    return f"--nproc {os.environ.get('LOCAL_WORLD_SIZE', dist.world_size)} "


def broadcast_from_main(value: Any, dist: DistributedContext) -> Any:
    """Return rank 0's `value` on every rank (any picklable object)."""
    if not dist.enabled:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def main_process_first(dist: DistributedContext) -> Iterator[None]:
    """Run the body on rank 0 first and on the other ranks after it finished, so only rank 0
    downloads or unpacks data into a shared folder. Uses a gloo group with a long timeout,
    because a download outlasts the collective timeout."""
    if not dist.enabled:
        yield
        return
    group = torch.distributed.new_group(backend="gloo", timeout=DATA_PREPARATION_TIMEOUT)
    if not dist.is_main:
        torch.distributed.barrier(group=group)
    yield
    if dist.is_main:
        torch.distributed.barrier(group=group)
    torch.distributed.destroy_process_group(group)


def shutdown_distributed() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
