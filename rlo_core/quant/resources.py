"""Device choice, memory placement and evaluation data for a quantization run."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from rlo_core.errors import ConfigError
from rlo_core.quant.layers import model_bytes

log = logging.getLogger(__name__)

# Share of free device memory the whole model may take before evaluation goes layer by layer,
# and the share the stored calibration activations may take before they move to the CPU.
MODEL_MEMORY_SHARE = 0.8
ACTIVATION_MEMORY_SHARE = 0.3


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but PyTorch sees no CUDA device. Use "
                          "--device cpu (or auto).")
    return torch.device(name)


def free_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device; None for the CPU (treated as large enough)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free


@dataclass
class Placement:
    """Placement of the evaluation and of the stored activations."""

    layerwise_eval: bool
    store_device: torch.device


def plan_placement(model: nn.Module, device: torch.device, windows: int, seqlen: int) -> Placement:
    free = free_memory(device)
    if free is None:
        return Placement(False, device)
    hidden = int(getattr(model.config, "hidden_size", 0) or 0)
    element = next(model.parameters()).element_size()
    activations = windows * seqlen * hidden * element
    store = device if activations < ACTIVATION_MEMORY_SHARE * free else torch.device("cpu")
    if store.type == "cpu":
        log.info("Calibration activations (%.1f GiB) stay on the CPU: the device has %.1f GiB "
                 "free.", activations / 2**30, free / 2**30)
    layerwise = model_bytes(model) > MODEL_MEMORY_SHARE * free
    if layerwise:
        log.info("The model (%.1f GiB) does not fit in %.1f GiB of free device memory; "
                 "evaluating one decoder layer at a time.", model_bytes(model) / 2**30,
                 free / 2**30)
    return Placement(layerwise, store)


@dataclass
class EvalSet:
    """Evaluation windows of one data set, with the loader variant that produced them."""

    name: str
    variant: str
    windows: torch.Tensor  # [N, seqlen] token ids

    def describe(self) -> dict:
        return {"name": self.name, "variant": self.variant, "windows": int(self.windows.shape[0]),
                "seqlen": int(self.windows.shape[1])}


def load_eval_sets(specs: list[str], tokenizer, seqlen: int, data_dir: str,
                   max_windows: int | None) -> list[EvalSet]:
    from rlo_core.lm.text_data import load_text_splits
    from rlo_core.lm.windows import evaluation_windows

    sets = []
    for spec in specs:
        splits = load_text_splits(spec, data_dir=data_dir)
        windows = evaluation_windows(splits, tokenizer, seqlen)
        if max_windows is not None:
            windows = windows[:max_windows]
        log.info("Evaluation data %s (%s): %d windows of %d tokens from %s", spec, splits.variant,
                 windows.shape[0], seqlen, splits.source)
        sets.append(EvalSet(spec, splits.variant, windows))
    return sets
