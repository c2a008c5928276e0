"""Trainer checkpoints of a finetuning run (`<run>/checkpoints/checkpoint-N`): their health,
and the global batch they were trained with."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from rlo_core.errors import ConfigError

log = logging.getLogger(__name__)


def latest_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Return the Trainer checkpoint folders (checkpoint-N), newest first."""
    found = [p for p in Path(checkpoint_dir).glob("checkpoint-*")
             if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def weights_are_finite(folder: Path) -> bool:
    """Return True when the folder has safetensors weights and none contains a NaN or infinity."""
    import torch
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    for path in files:
        for tensor in load_file(path).values():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return False
    return bool(files)


def last_good_checkpoint(checkpoint_dir: Path) -> Optional[Path]:
    """Return the newest checkpoint whose weights are all finite, or None."""
    for folder in latest_checkpoints(checkpoint_dir):
        if weights_are_finite(folder):
            return folder
    return None


# -- the global batch a checkpoint was trained with ----------------------------------------

BATCH_FILE = "rlo-batch.json"


@dataclass(frozen=True)
class GlobalBatch:
    """Blocks per optimizer step: processes x per-process batch x gradient accumulation."""

    processes: int
    batch_size: int
    grad_accum: int

    @property
    def blocks(self) -> int:
        return self.processes * self.batch_size * self.grad_accum

    def describe(self) -> str:
        return (f"{self.processes} process(es) x --batch-size {self.batch_size} x --grad-accum "
                f"{self.grad_accum} = {self.blocks} blocks per step")


def write_global_batch(folder: Path, batch: GlobalBatch) -> None:
    from rlo_core import atomic

    atomic.write_json(Path(folder) / BATCH_FILE, asdict(batch))


def read_global_batch(folder: Path) -> Optional[GlobalBatch]:
    """Return the global batch recorded in a checkpoint, or None for one saved without it."""
    path = Path(folder) / BATCH_FILE
    try:
        return GlobalBatch(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def check_global_batch(checkpoint: Path, current: GlobalBatch) -> None:
    """Reject a resume whose global batch differs from the checkpoint's.

    The Trainer finds its place in the data by counting optimizer steps, and its shuffled
    order of blocks is the same for any process count (checked with transformers 5.25 and
    2 CPU processes). A resume is therefore exact when the
    blocks per step are unchanged, and with another count it would train some blocks twice
    and skip others.
    """
    saved = read_global_batch(checkpoint)
    if saved is None:
        log.warning("%s does not record its global batch, so this resume cannot check that "
                    "it continues at the right place in the data.", checkpoint)
        return
    if saved.blocks == current.blocks:
        return
    per_process = current.processes * current.grad_accum
    if saved.blocks % per_process == 0:
        example = (f"for example --batch-size {saved.blocks // per_process} with "
                   f"{current.processes} process(es) and --grad-accum {current.grad_accum}")
    else:
        example = "by choosing --batch-size and --grad-accum for this process count"
    raise ConfigError(
        f"{checkpoint} was trained with {saved.describe()}, but this resume would use "
        f"{current.describe()}. The Trainer finds its place in the data by counting steps, so "
        f"another global batch would train some blocks twice and skip others. Resume with "
        f"{saved.blocks} blocks per step ({example}), or start a new run from the "
        f"checkpoint's weights with --model {checkpoint}.")
