"""Quantize one weight matrix against its (repaired, damped) Hessian with a named method."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlo_core.quant.grids import Grid, empty_minmax, fit_minmax, fit_symmetric
from rlo_core.quant.gptq import gptq_codes, inverse_cholesky_upper
from rlo_core.quant.hessian import factorize_with_retry
from rlo_core.quant.ldlq import greedy_passes, ldl_upper, ldlq_codes

METHODS = ("nearest", "gptq", "ldlq", "ldlqRG")


@dataclass
class MatrixQuantization:
    """Codes in the original column order (uint8) and the grid that decodes them."""

    codes: torch.Tensor
    grid: Grid
    greedy_sweeps: int = 0

    def dequantize(self) -> torch.Tensor:
        return self.grid.decode_matrix(self.codes.to(self.grid.step.dtype))


def processing_order(method: str, hessian: torch.Tensor, act_order: bool) -> torch.Tensor:
    """Column order: decreasing diag(H) for LDLQ-RG and act-order, else the natural order."""
    if method == "ldlqRG" or (act_order and method in ("gptq", "ldlq")):
        return torch.argsort(torch.diagonal(hessian), descending=True, stable=True)
    return torch.arange(hessian.shape[0], device=hessian.device)


def make_grid(weight: torch.Tensor, *, method: str, bits: int, symmetric: bool,
              groupsize: int | None, act_order: bool) -> tuple[Grid, bool]:
    """Return the grid for `weight`, and whether GPTQ fits its groups while it runs."""
    if symmetric:
        return fit_symmetric(weight, bits), False
    if method == "gptq" and groupsize and not act_order:
        rows, columns = weight.shape
        return empty_minmax(rows, columns, bits, groupsize, weight), True
    return fit_minmax(weight, bits, groupsize), False


def quantize_matrix(weight: torch.Tensor, hessian: torch.Tensor, *, method: str, bits: int,
                    symmetric: bool = False, groupsize: int | None = None,
                    act_order: bool = False, npasses: int = 0, blocksize: int = 128,
                    generator: torch.Generator | None = None, unbiased: bool = False,
                    name: str = "matrix", percdamp: float = 0.01) -> MatrixQuantization:
    """Quantize `weight` (out x in) with `method`, all arithmetic in weight's dtype.

    `hessian` must already be repaired and damped. Keep it in float64: a factorization that
    fails in weight's dtype is retried from it in float64. `unbiased` draws the rounding noise
    from `generator` (on the CPU, so results do not depend on the device).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    grid, fit_groups = make_grid(weight, method=method, bits=bits, symmetric=symmetric,
                                 groupsize=groupsize, act_order=act_order)
    noise = None
    if unbiased:
        noise = torch.rand(weight.shape, generator=generator, dtype=torch.float64)
        noise = noise.to(weight.device, weight.dtype)

    if method == "nearest":
        if noise is None:
            codes = grid.encode_matrix(weight)
        else:
            codes = grid.encode(weight, torch.arange(weight.shape[1], device=weight.device), noise)
        return MatrixQuantization(codes.to(torch.uint8), grid)

    order = processing_order(method, hessian, act_order)
    inverse = torch.argsort(order)
    columns = order.tolist()
    permuted_weight = weight[:, order]
    permuted_hessian = hessian[order][:, order]
    permuted_noise = None if noise is None else noise[:, order]

    sweeps = 0
    if method == "gptq":
        upper, _ = factorize_with_retry(permuted_hessian, inverse_cholesky_upper, name=name,
                                        percdamp=percdamp, dtype=weight.dtype)
        codes = gptq_codes(permuted_weight, upper.to(weight.dtype), grid, columns,
                           blocksize=blocksize, noise=permuted_noise, fit_groups=fit_groups)
    else:
        (feedback, _), used = factorize_with_retry(permuted_hessian, ldl_upper, name=name,
                                                   percdamp=percdamp, dtype=weight.dtype)
        codes = ldlq_codes(permuted_weight, feedback.to(weight.dtype), grid, columns,
                           blocksize=blocksize, noise=permuted_noise)
        if method == "ldlqRG" and npasses > 0:
            sweeps = greedy_passes(permuted_weight, used.to(weight.dtype), codes, grid, columns,
                                   npasses=npasses, blocksize=blocksize)
    return MatrixQuantization(codes[:, inverse].to(torch.uint8), grid, sweeps)
