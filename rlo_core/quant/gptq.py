"""GPTQ/OPTQ: round columns in order and push each rounding error onto the columns not yet
rounded, through the upper Cholesky factor U of H^-1 (H^-1 = U^T U).

For column j with current value w_j and codes q_j: e_j = (w_j - q_j) / U_jj, then
W[:, j+1:] -= e_j U[j, j+1:]. Updates are applied lazily: inside a block of columns as
rank-1 updates, and to the columns after the block as one matrix product.
"""

from __future__ import annotations

import torch

from rlo_core.quant.grids import Grid, minmax_params


def inverse_cholesky_upper(hessian: torch.Tensor) -> torch.Tensor:
    """Upper Cholesky factor U of H^-1, with H^-1 = U^T U.

    With H = R R^T for an upper triangular R (the Cholesky factor of H with rows and columns
    reversed), U = R^-1: it is upper triangular with a positive diagonal and
    U^T U = (R R^T)^-1. One factorization and one triangular solve replace GPTQ's
    Cholesky, inverse and second Cholesky.
    """
    reversed_lower = torch.linalg.cholesky(torch.flip(hessian, (0, 1)))
    upper = torch.flip(reversed_lower, (0, 1))
    identity = torch.eye(hessian.shape[0], dtype=hessian.dtype, device=hessian.device)
    return torch.linalg.solve_triangular(upper, identity, upper=True)


def gptq_codes(weight: torch.Tensor, upper: torch.Tensor, grid: Grid, columns: list[int], *,
               blocksize: int = 128, noise: torch.Tensor | None = None,
               fit_groups: bool = False) -> torch.Tensor:
    """Codes of `weight` (rows x columns, already in processing order) as floats.

    `columns[k]` is the original index of the column at position k, which selects its
    grid group. With `fit_groups`, the min-max grid of each group is fitted from the
    error-updated weights when the group's first column is reached (GPTQ's grouping), so the
    caller must then keep the original column order. `noise` (uniform in [0, 1), same shape
    as weight) switches to stochastic rounding.
    """
    # Work on W^T so that each column is a contiguous row: the per-column rank-1 updates
    # are then several times faster on the CPU.
    remaining = weight.T.contiguous()
    noise_rows = None if noise is None else noise.T
    count = remaining.shape[0]
    codes = torch.zeros_like(remaining)
    if fit_groups:
        # Blocks that start on group boundaries see all earlier updates when a group is fitted.
        blocksize = grid.groupsize * max(1, blocksize // grid.groupsize)
    for start in range(0, count, blocksize):
        end = min(start + blocksize, count)
        block = remaining[start:end].clone()
        errors = torch.zeros_like(block)
        factor = upper[start:end, start:end]
        for i in range(end - start):
            position = start + i
            column = columns[position]
            if fit_groups and column % grid.groupsize == 0:
                group = column // grid.groupsize
                step, zero = minmax_params(block[i:i + grid.groupsize].T, grid.bits)
                grid.step[:, group], grid.zero[:, group] = step, zero
            values = block[i]
            code = grid.encode(values, column, None if noise_rows is None else noise_rows[position])
            codes[position] = code
            error = (values - grid.decode(code, column)) / factor[i, i]
            block[i:].addr_(factor[i, i:], error, alpha=-1)
            errors[i] = error
        remaining[end:] -= upper[start:end, end:].T @ errors
    return codes.T
