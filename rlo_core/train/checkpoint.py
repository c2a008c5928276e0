"""Training checkpoints that load with `torch.load(weights_only=True)`.

RNG states are stored as tensors (Python's and NumPy's states converted), and the model's
state dict never carries the `module.` prefix of DistributedDataParallel or the `_orig_mod.`
prefix of torch.compile, so checkpoints move between single- and multi-process runs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlo_core import atomic
from rlo_core.errors import CheckpointError

CHECKPOINT_VERSION = 1


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def rng_state() -> dict[str, torch.Tensor]:
    """All generator states as tensors (no pickled objects, so weights_only loading works)."""
    version, mt_state, gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": torch.tensor([version, *mt_state], dtype=torch.int64),
        "python_gauss": torch.tensor([float("nan") if gauss is None else gauss],
                                     dtype=torch.float64),
        "numpy": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy_extra": torch.tensor([np_pos, np_has_gauss, np_gauss], dtype=torch.float64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    python = state["python"].tolist()
    gauss = float(state["python_gauss"][0])
    random.setstate((python[0], tuple(python[1:]), None if gauss != gauss else gauss))
    position, has_gauss, cached = state["numpy_extra"].tolist()
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), int(position),
                         int(has_gauss), cached))
    if "cuda" in state and torch.cuda.is_available():
        for device, device_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device)


def save_checkpoint(path: Path, *, model, optimizer, scheduler, scaler, epoch: int,
                    batches_done: int, step: int, best_acc: float, extra: dict | None = None) -> None:
    """Write a resumable checkpoint atomically."""
    state = {
        "version": CHECKPOINT_VERSION,
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "scaler": scaler.state_dict() if scaler is not None else {},
        "epoch": epoch,
        "batches_done": batches_done,
        "step": step,
        "best_acc": best_acc,
        "rng": rng_state(),
        "extra": extra or {},
    }
    atomic.torch_save(state, path)


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} was not found. A run writes checkpoints/last.pt "
                              "after its first epoch or when interrupted with Ctrl-C.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"Checkpoint {path} could not be loaded ({type(error).__name__}: {error}). The file "
            "is corrupt or not an rlo checkpoint; use checkpoints/best.pt of the same run, or "
            "start a new run.") from error
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"Checkpoint {path} is not an rlo training checkpoint of version "
                              f"{CHECKPOINT_VERSION}.")
    return state


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove `module.` / `_orig_mod.` prefixes from a state dict saved by other tools."""
    cleaned = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        cleaned[key] = value
    return cleaned
