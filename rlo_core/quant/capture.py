"""Run a decoder one layer at a time: capture the inputs of the first layer, push stored
activations through each layer, and replay final hidden states through the model's head.

Only the layer being run and the current window's activations need to be on the device;
stored activations may live on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rlo_core.quant.layers import DecoderStack


class _StopForward(Exception):
    """Raised by the catcher to end a forward pass once the first layer's input is known."""


class _LayerStandIn(nn.Module):
    """Base of the modules placed in the layer list during a run.

    Unknown attributes come from the real layer, because some models read per-layer
    attributes (such as `attention_type`) in their loop.
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        object.__setattr__(self, "_real_layer", layer)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "_real_layer"), name)


class _InputCatcher(_LayerStandIn):
    def __init__(self, layer: nn.Module, sink: list):
        super().__init__(layer)
        object.__setattr__(self, "_sink", sink)

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._sink.append((hidden_states, args, kwargs))
        raise _StopForward


class _Replay(_LayerStandIn):
    """Returns stored final hidden states in place of the first layer's output."""

    def __init__(self, layer: nn.Module, as_tuple: bool):
        super().__init__(layer)
        object.__setattr__(self, "_value", None)
        object.__setattr__(self, "_as_tuple", as_tuple)

    def set(self, value: torch.Tensor) -> None:
        object.__setattr__(self, "_value", value)

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return (self._value,) if self._as_tuple else self._value


class _Passthrough(_LayerStandIn):
    def __init__(self, layer: nn.Module, as_tuple: bool):
        super().__init__(layer)
        object.__setattr__(self, "_as_tuple", as_tuple)

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return (hidden_states,) if self._as_tuple else hidden_states


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to_device(item, device) for item in value)
    if isinstance(value, list):
        return [_to_device(item, device) for item in value]
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    return value


@dataclass
class LayerInputs:
    """Hidden states per window (on `store_device`) and the extra arguments every layer gets
    (attention mask, position ids, rotary embeddings), identical for windows of one length."""

    hidden: list[torch.Tensor]
    args: tuple
    kwargs: dict
    store_device: torch.device
    returns_tuple: bool = field(default=False)


@torch.no_grad()
def capture_first_inputs(model: nn.Module, stack: DecoderStack, windows: torch.Tensor,
                         device: torch.device, store_device: torch.device) -> LayerInputs:
    """Run the model on each window (batch 1) up to its first decoder layer.

    Everything but the decoder layers must already be on `device`.
    """
    sink: list = []
    first = stack.layers[0]
    stack.layers[0] = _InputCatcher(first, sink)
    hidden: list[torch.Tensor] = []
    args: tuple = ()
    kwargs: dict = {}
    try:
        for index in range(windows.shape[0]):
            try:
                model(input_ids=windows[index:index + 1].to(device), use_cache=False)
            except _StopForward:
                pass
            states, call_args, call_kwargs = sink.pop()
            hidden.append(states.to(store_device))
            if index == 0:
                args, kwargs = call_args, call_kwargs
    finally:
        stack.layers[0] = first
    kwargs = {key: value for key, value in kwargs.items()
              if key not in ("past_key_values", "past_key_value", "cache")}
    return LayerInputs(hidden, args, kwargs, store_device)


@torch.no_grad()
def run_layer(layer: nn.Module, inputs: LayerInputs, device: torch.device, *,
              keep_outputs: bool = True) -> None:
    """Run the layer (on `device`) on each stored hidden state and, with `keep_outputs`,
    replace the state by the layer's output (without, only the layer's hooks see the run)."""
    args = _to_device(inputs.args, device)
    kwargs = _to_device(inputs.kwargs, device)
    for index, states in enumerate(inputs.hidden):
        output = layer(states.to(device), *args, **kwargs)
        if isinstance(output, tuple):
            inputs.returns_tuple = True
            output = output[0]
        if keep_outputs:
            inputs.hidden[index] = output.to(inputs.store_device)


@torch.no_grad()
def head_logits(model: nn.Module, stack: DecoderStack, inputs: LayerInputs,
                windows: torch.Tensor, device: torch.device):
    """Yield the logits of each window from its stored final hidden states.

    The model's own forward runs with the first layer replaced by a replay of the stored
    states and the others by pass-throughs, so its final norm and head apply unchanged.
    """
    originals = list(stack.layers)
    replay = _Replay(originals[0], inputs.returns_tuple)
    for index, layer in enumerate(originals):
        stack.layers[index] = replay if index == 0 else _Passthrough(layer, inputs.returns_tuple)
    try:
        for index in range(windows.shape[0]):
            replay.set(inputs.hidden[index].to(device))
            yield model(input_ids=windows[index:index + 1].to(device), use_cache=False).logits
    finally:
        for index, layer in enumerate(originals):
            stack.layers[index] = layer
