"""Adapters trained on a quantized checkpoint: save, load and merge.

An adapter folder (default `<checkpoint>.adapters/`) contains:
- `adapter_config.json`, `adapter_model.safetensors`: the LoRA adapters, written by peft
  `save_pretrained`
- `norms_and_biases.safetensors`: the trained layer-norm parameters and biases, by their
  name in the base model
- `quantized_adapters.json`: the checkpoint's SHA-256, the base model and the perplexities
  measured at save time, so loading can check it pairs with the right checkpoint
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from rlo_core import atomic
from rlo_core.errors import CheckpointError

log = logging.getLogger(__name__)

EXTRAS_FILE = "norms_and_biases.safetensors"
METADATA_FILE = "quantized_adapters.json"
FORMAT = "rlo-quant-adapters"
FORMAT_VERSION = 1


def default_adapter_dir(checkpoint: str | Path) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".adapters")


def save_adapters(folder: Path, peft_model: Any, extras: dict[str, torch.nn.Parameter],
                  metadata: dict[str, Any]) -> Path:
    """Write adapters, norms, biases and metadata to `folder`, replacing it only once complete."""
    from safetensors.torch import save_file

    def fill(staging: Path) -> None:
        peft_model.save_pretrained(staging, safe_serialization=True)
        tensors = {name: parameter.detach().cpu().contiguous() for name, parameter in extras.items()}
        save_file(tensors, str(staging / EXTRAS_FILE))
        atomic.write_json(staging / METADATA_FILE,
                          {**metadata, "format": FORMAT, "format_version": FORMAT_VERSION})

    return atomic.write_folder(Path(folder), fill)


def read_metadata(folder: Path) -> dict[str, Any]:
    import json

    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise CheckpointError(f"No adapters found in {folder} ({METADATA_FILE} is missing). Train "
                              "them first with 'rlo finetune --quantized CHECKPOINT', or pass "
                              "their folder with --output.")
    metadata = json.loads(path.read_text(encoding="utf-8"))
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {metadata.get('format')!r}, expected {FORMAT!r}.")
    if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path} uses format version {metadata['format_version']}, newer "
                              f"than the version {FORMAT_VERSION} this rlo reads. Upgrade rlo.")
    return metadata


def load_adapters(folder: Path, base: Any) -> tuple[Any, dict[str, torch.nn.Parameter]]:
    """Load adapters saved by `save_adapters` onto `base` (a `QuantizedBase`).

    Raises CheckpointError when the folder was saved for another quantized checkpoint.
    Returns the peft model (adapters frozen, for evaluation) and the norm and bias parameters.
    """
    from peft import PeftModel
    from safetensors.torch import load_file

    from rlo_core.lm.quantized_model import norm_and_bias_parameters

    folder = Path(folder)
    metadata = read_metadata(folder)
    if metadata.get("checkpoint_sha256") != base.checkpoint_sha256:
        raise CheckpointError(f"The adapters in {folder} were trained on a different quantized "
                              f"checkpoint ({metadata.get('checkpoint')}) than {base.checkpoint}: "
                              "their SHA-256 differ. Pass the checkpoint they were trained on.")
    extras = norm_and_bias_parameters(base.model)
    saved = load_file(str(folder / EXTRAS_FILE))
    if set(saved) != set(extras):
        missing = sorted(set(extras) - set(saved))[:3]
        unexpected = sorted(set(saved) - set(extras))[:3]
        raise CheckpointError(f"{folder / EXTRAS_FILE} does not match the model's norms and "
                              f"biases (missing {missing}, unexpected {unexpected}). Train the "
                              "adapters again.")
    with torch.no_grad():
        for name, parameter in extras.items():
            parameter.copy_(saved[name].to(parameter.device, parameter.dtype))
    peft_model = PeftModel.from_pretrained(base.model, str(folder), is_trainable=False)
    return peft_model, extras


def merge_adapters(peft_model: Any) -> Any:
    """Fold the LoRA products into the dequantized weights; returns the plain transformers model."""
    return peft_model.merge_and_unload()
