"""Quantize one linear layer's weight from its calibration Hessian."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlo_core.quant.hessian import damp, fix_dead_inputs, proxy_loss
from rlo_core.quant.incoherence import make_incoherent
from rlo_core.quant.methods import quantize_matrix
from rlo_core.quant.quantized import QuantizedLinear
from rlo_core.quant.transforms import derive_seed


@dataclass
class RoundingSettings:
    """Rounding options shared by every linear layer (the algorithm part of the quantize config)."""

    method: str = "gptq"
    bits: int = 4
    incoherence: bool = False
    transform: str = "hadamard"
    npasses: int = 0
    percdamp: float = 0.01
    groupsize: int | None = None
    act_order: bool = False
    blocksize: int = 128  # columns per lazy block; the column count disables lazy batching
    unbiased: bool = False
    seed: int = 0
    work_dtype: torch.dtype = torch.float32


@dataclass
class LinearResult:
    record: QuantizedLinear
    weight: torch.Tensor  # the reconstructed weight, float64, on the reconstruct device
    proxy_loss: float
    greedy_sweeps: int


def quantize_linear(name: str, weight: torch.Tensor, hessian: torch.Tensor,
                    settings: RoundingSettings, *,
                    reconstruct_device: torch.device | str = "cpu") -> LinearResult:
    """Quantize `weight` (out x in) against `hessian` = E[x x^T] (float64) of its inputs.

    Seeds for the transforms and the stochastic rounding derive from `settings.seed` and
    `name`, so each layer gets its own and a rerun reproduces them.
    """
    device = hessian.device
    original = weight.detach().to(device, torch.float64)
    work_weight = original.clone()
    work_hessian = hessian.clone()
    fix_dead_inputs(work_hessian, work_weight)

    record_extra: dict = {}
    if settings.incoherence:
        problem = make_incoherent(work_weight, work_hessian, transform=settings.transform,
                                  left_seed=derive_seed(settings.seed, name, "left"),
                                  right_seed=derive_seed(settings.seed, name, "right"))
        work_weight, work_hessian = problem.weight, problem.hessian
        record_extra = {"rescale": problem.rescale.cpu(), "left": problem.left.spec(),
                        "right": problem.right.spec()}

    generator = torch.Generator(device="cpu")
    generator.manual_seed(derive_seed(settings.seed, name, "rounding"))
    result = quantize_matrix(
        work_weight.to(settings.work_dtype), damp(work_hessian, settings.percdamp),
        method=settings.method, bits=settings.bits, symmetric=settings.incoherence,
        groupsize=settings.groupsize, act_order=settings.act_order, npasses=settings.npasses,
        blocksize=settings.blocksize, generator=generator, unbiased=settings.unbiased,
        name=name, percdamp=settings.percdamp)

    grid = result.grid
    record = QuantizedLinear(
        name=name, shape=tuple(weight.shape), bits=settings.bits, codes=result.codes.cpu(),
        step=grid.step.float().cpu(), zero=grid.zero.float().cpu(), groupsize=grid.groupsize,
        grid_kind=grid.kind, **record_extra)
    rebuilt = record.reconstruct(reconstruct_device)
    loss = proxy_loss(original, rebuilt.to(device), hessian)
    return LinearResult(record, rebuilt, loss, result.greedy_sweeps)
