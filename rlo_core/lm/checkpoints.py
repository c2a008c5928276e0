"""Trainer checkpoints of a finetuning run (`<run>/checkpoints/checkpoint-N`) and their health."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


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
