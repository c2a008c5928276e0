"""Quantize a decoder layer by layer, feeding each layer the outputs of the quantized ones
before it, as GPTQ and QuIP do."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from rlo_core.quant.capture import LayerInputs, capture_first_inputs, run_layer
from rlo_core.quant.hessian import HessianAccumulator
from rlo_core.quant.layers import DecoderStack, find_linears, move_outside_layers
from rlo_core.quant.linear import RoundingSettings, quantize_linear
from rlo_core.quant.progress import LayerProgress
from rlo_core.quant.quantized import QuantizedLinear

log = logging.getLogger(__name__)


@dataclass
class DecoderQuantization:
    records: list[QuantizedLinear] = field(default_factory=list)
    proxy_losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def proxy_loss(self) -> float:
        return sum(self.proxy_losses.values())


@torch.no_grad()
def collect_hessians(layer: nn.Module, linears: dict[str, nn.Linear], inputs: LayerInputs,
                     device: torch.device) -> dict[str, HessianAccumulator]:
    """Accumulate E[x x^T] for the input of every linear layer over all calibration windows.

    Linear layers that read the same tensor (query, key and value projections) share one
    Gram matrix per forward pass instead of computing it three times.
    """
    accumulators = {name: HessianAccumulator(linear.in_features, device)
                    for name, linear in linears.items()}
    shared: dict = {"input": None, "gram": None, "tokens": 0}

    def make_hook(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple) -> None:
            features = args[0]
            if shared["input"] is not features:
                rows = features.reshape(-1, features.shape[-1]).to(torch.float64)
                shared.update(input=features, gram=rows.T @ rows, tokens=rows.shape[0])
            accumulators[name].add_gram(shared["gram"], shared["tokens"])
        return hook

    handles = [linear.register_forward_pre_hook(make_hook(name))
               for name, linear in linears.items()]
    try:
        run_layer(layer, inputs, device, keep_outputs=False)
    finally:
        for handle in handles:
            handle.remove()
        shared.clear()
    return accumulators


def quantize_decoder(model: nn.Module, stack: DecoderStack, windows: torch.Tensor,
                     settings: RoundingSettings, *, device: torch.device,
                     store_device: torch.device,
                     on_layer: Optional[Callable[[int, int], None]] = None) -> DecoderQuantization:
    """Quantize every linear layer of every decoder layer in place and return the records.

    `windows` [N, seqlen] are the calibration token windows. Only one decoder layer is on
    `device` at a time; `on_layer(done, total)` is called after each layer.
    """
    started = time.monotonic()
    result = DecoderQuantization()
    move_outside_layers(model, stack, device)
    inputs = capture_first_inputs(model, stack, windows, device, store_device)
    total = len(stack.layers)
    with LayerProgress(total, f"Quantizing ({settings.method}, {settings.bits} bits)") as progress:
        for index, layer in enumerate(stack.layers):
            layer.to(device)
            linears = find_linears(layer)
            accumulators = collect_hessians(layer, linears, inputs, device)
            layer_loss = 0.0
            for name, linear in linears.items():
                full_name = stack.layer_name(index, name)
                hessian = accumulators.pop(name).mean(full_name)
                quantized = quantize_linear(full_name, linear.weight, hessian, settings,
                                            reconstruct_device=device)
                linear.weight.data.copy_(quantized.weight.to(linear.weight.dtype))
                result.records.append(quantized.record)
                result.proxy_losses[full_name] = quantized.proxy_loss
                layer_loss += quantized.proxy_loss
                log.debug("%s: proxy loss %.6g", full_name, quantized.proxy_loss)
            run_layer(layer, inputs, device)
            layer.to("cpu")
            progress.advance(f"proxy loss {layer_loss:.4g}")
            if on_layer is not None:
                on_layer(index + 1, total)
    result.seconds = time.monotonic() - started
    return result
