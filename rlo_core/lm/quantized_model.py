"""A causal LM rebuilt from an `rlo quantize --save` checkpoint, with peft LoRA adapters.

The quantized linear layers keep their dense weight equal to the reconstruction of their
codes (the same `apply_records` path that `rlo quantize --load` measures) and that weight is
frozen. LoRA adapters wrap exactly those layers; layer norms and every bias stay trainable.
The frozen weights are float32 in memory, so memory use is that of the float32 model, while
the checkpoint on disk stays bit-packed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlo_core.errors import CheckpointError

log = logging.getLogger(__name__)

# Adapter dropout. Zero keeps the training forward pass equal to the evaluated one.
LORA_DROPOUT = 0.0


@dataclass
class QuantizedBase:
    """The base model with reconstructed quantized weights, before adapters are attached."""

    model: Any
    records: list  # rlo_core.quant.quantized.QuantizedLinear, one per quantized layer
    header: dict[str, Any]
    checkpoint: Path
    checkpoint_sha256: str
    model_reference: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def quantized_names(records: list) -> list[str]:
    return [record.name for record in records]


def apply_quantized_weights(model: nn.Module, loaded: Any, checkpoint: Path, model_reference: str,
                            device: str) -> QuantizedBase:
    """Check that `model` is the checkpoint's base model and set its quantized weights.

    Raises CheckpointError when the weights that are not quantized differ from those of the
    model the checkpoint was saved from.
    """
    from rlo_core.quant.checkpoint import apply_records, base_fingerprint

    header = loaded.header
    names = set(quantized_names(loaded.records))
    if base_fingerprint(model, names) != header.get("model_fingerprint"):
        raise CheckpointError(
            f"The weights of {model_reference} that are not quantized (embeddings, norms, biases, "
            f"head) differ from those of {header.get('model')} used when {checkpoint} was saved. "
            "Pass that base model with --model, or leave --model out to use it.")
    if header.get("reconstruct_device") not in (None, device):
        log.warning("%s was saved on %s and is rebuilt on %s: perplexities may differ from the "
                    "saved ones in the last digits.", checkpoint, header.get("reconstruct_device"),
                    device)
    apply_records(model, loaded.records, device)
    for record in loaded.records:
        model.get_submodule(record.name).weight.requires_grad_(False)
    return QuantizedBase(model, loaded.records, header, checkpoint, file_sha256(checkpoint),
                         model_reference)


def frozen_weights_match_codes(model: nn.Module, records: list, device: str = "cpu") -> bool:
    """True when every quantized layer's weight equals the reconstruction of its codes exactly.

    `model` is the base model or a peft model wrapping it (the weight then sits in
    `<layer>.base_layer`).
    """
    modules = dict(model.named_modules())
    for record in records:
        module = find_layer(modules, record.name)
        expected = record.reconstruct(device).to(module.weight.device, module.weight.dtype)
        if not torch.equal(module.weight.detach(), expected):
            return False
    return True


def find_layer(modules: dict[str, nn.Module], name: str) -> nn.Module:
    """Return the linear layer `name` of a plain model or of a peft model wrapping it."""
    for key, module in modules.items():
        if key == name or key.endswith("." + name):
            inner = getattr(module, "base_layer", module)
            if isinstance(inner, nn.Linear):
                return inner
    raise CheckpointError(f"The model has no linear layer {name} from the quantized checkpoint.")


def is_norm(module: nn.Module) -> bool:
    """True for layer norms, including the RMSNorm classes of Llama-family models."""
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
        return True
    return type(module).__name__.endswith(("RMSNorm", "LayerNorm"))


def norm_and_bias_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Parameters of the layer norms and every bias, by their name in the base model."""
    selected: dict[str, nn.Parameter] = {}
    for module_name, module in model.named_modules():
        for parameter_name, parameter in module.named_parameters(recurse=False):
            if is_norm(module) or parameter_name == "bias":
                name = f"{module_name}.{parameter_name}" if module_name else parameter_name
                selected[name] = parameter
    return selected


def attach_adapters(base: QuantizedBase, *, rank: int, alpha: float) -> tuple[Any, dict[str, nn.Parameter]]:
    """Wrap the quantized layers in new LoRA adapters and make norms and biases trainable.

    Returns the peft model and the trainable norm and bias parameters by base-model name.
    """
    from peft import LoraConfig, get_peft_model

    extras = norm_and_bias_parameters(base.model)
    lora = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=LORA_DROPOUT, bias="none",
                      target_modules=quantized_names(base.records), task_type="CAUSAL_LM")
    peft_model = get_peft_model(base.model, lora)
    for parameter in extras.values():
        parameter.requires_grad_(True)
    return peft_model, extras


def count_parameters(peft_model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    return trainable, total
