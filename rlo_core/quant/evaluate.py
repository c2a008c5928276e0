"""Fixed-window perplexity of a (possibly quantized) model, on the whole model or layer by layer.

Both paths follow the same protocol: each window of `seqlen` tokens runs alone, the window's
mean cross-entropy of logits[:, :-1] against tokens[:, 1:] is taken, and
perplexity = exp(mean of the window means). The layer-by-layer path keeps one decoder layer
on the device at a time, for models larger than the device memory.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rlo_core.lm.perplexity import fixed_window_perplexity, sum_token_nll
from rlo_core.quant.capture import capture_first_inputs, head_logits, run_layer
from rlo_core.quant.layers import DecoderStack, move_outside_layers


@torch.no_grad()
def layerwise_perplexity(model: nn.Module, stack: DecoderStack, windows: torch.Tensor,
                         device: torch.device, store_device: torch.device) -> float:
    """Perplexity with one decoder layer on `device` at a time; returns the perplexity."""
    move_outside_layers(model, stack, device)
    inputs = capture_first_inputs(model, stack, windows, device, store_device)
    for layer in stack.layers:
        layer.to(device)
        run_layer(layer, inputs, device)
        layer.to("cpu")
    means = []
    for index, logits in enumerate(head_logits(model, stack, inputs, windows, device)):
        window = windows[index:index + 1].to(device)
        total, count = sum_token_nll(logits, window)
        means.append(float(total) / count)
    return math.exp(sum(means) / len(means))


def model_perplexity(model: nn.Module, windows: torch.Tensor, device: torch.device, *,
                     batch_size: int, stack: DecoderStack | None = None,
                     layerwise: bool = False, store_device: torch.device | None = None) -> float:
    """Perplexity of `model` on `windows` [N, seqlen]; the whole model moves to `device`
    unless `layerwise` is set (which needs `stack`)."""
    if layerwise:
        if stack is None:
            raise ValueError("layerwise evaluation needs the decoder stack")
        return layerwise_perplexity(model, stack, windows, device,
                                    store_device or torch.device("cpu"))
    model.to(device)
    return fixed_window_perplexity(model, windows, batch_size=batch_size).perplexity
