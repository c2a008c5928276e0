"""Generic discovery of a decoder's layer stack and of the linear layers inside each layer.

The stack is the `nn.ModuleList` whose entries all have one class and contain `nn.Linear`
modules, choosing the list with the most parameters when there are several. This finds
`model.decoder.layers` of OPT and `model.layers` of Llama, Mistral, Qwen and similar
decoders without a per-family table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rlo_core.errors import ModelError


@dataclass
class DecoderStack:
    """The decoder layers of a model and where the list sits, as `parent.<attribute>`."""

    path: str  # dotted name of the ModuleList, e.g. "model.decoder.layers"
    parent: nn.Module
    attribute: str
    layers: nn.ModuleList

    def layer_name(self, index: int, linear: str) -> str:
        return f"{self.path}.{index}.{linear}"


def _parameter_count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def find_decoder_stack(model: nn.Module) -> DecoderStack:
    """Locate the decoder layer list of `model`; raises ModelError when there is none."""
    best: tuple[int, str] | None = None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(layer) for layer in module}) != 1:
            continue
        if not any(isinstance(sub, nn.Linear) for sub in module[0].modules()):
            continue
        size = _parameter_count(module)
        if best is None or size > best[0]:
            best = (size, name)
    if best is None:
        raise ModelError(
            f"No decoder layer stack found in {type(model).__name__}: rlo quantize expects an "
            "nn.ModuleList of identical blocks containing nn.Linear layers (as in OPT and Llama). "
            "Models built from other layer types (for example GPT-2's Conv1D) are not supported.")
    path = best[1]
    parent_path, _, attribute = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    return DecoderStack(path, parent, attribute, getattr(parent, attribute))


def find_linears(layer: nn.Module) -> dict[str, nn.Linear]:
    """Return the `nn.Linear` modules of one decoder layer, keyed by their name inside it."""
    linears = {name: module for name, module in layer.named_modules()
               if isinstance(module, nn.Linear)}
    if not linears:
        raise ModelError(f"Decoder layer {type(layer).__name__} has no nn.Linear modules to "
                         "quantize.")
    return linears


def move_outside_layers(model: nn.Module, stack: DecoderStack, device: torch.device) -> None:
    """Move every module except the decoder layers (embeddings, norms, head) to `device`."""
    setattr(stack.parent, stack.attribute, nn.ModuleList())
    try:
        model.to(device)
    finally:
        setattr(stack.parent, stack.attribute, stack.layers)


def model_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
