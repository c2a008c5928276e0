"""LDLQ and LDLQ-RG (QuIP): rounding with linear feedback from the LDL decomposition of H.

Write H = (A + I) D (A + I)^T with A strictly upper triangular in the processing order and
D diagonal. LDLQ rounds column k of W to
    Q_k = round(W_k + sum_{j<k} (W_j - Q_j) A_jk),
so the rounding errors eta_k = (W_k + feedback) - Q_k give the proxy loss tr(eta D eta^T).
With the same column order and grid it yields the same codes as GPTQ/OPTQ.

LDLQ-RG processes columns in decreasing order of diag(H), then runs greedy passes of
coordinate descent: each column moves to the grid point nearest to the minimizer of the
proxy loss along that column, Q_k <- round(Q_k - (S H)_k / H_kk) with S = Q - W. Each
update can only lower the loss, and the passes stop early at a fixed point.
"""

from __future__ import annotations

import torch

from rlo_core.quant.grids import Grid


def ldl_upper(hessian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (A, d): A strictly upper triangular, d the diagonal of D, H = (A+I) diag(d) (A+I)^T.

    Reversing rows and columns turns the lower Cholesky factor of the reversed H into an
    upper factor R of H (H = R R^T); then d = diag(R)^2 and A + I = R / diag(R) by column.
    """
    lower = torch.linalg.cholesky(torch.flip(hessian, (0, 1)))
    upper = torch.flip(lower, (0, 1))
    diagonal = torch.diagonal(upper)
    unit = upper / diagonal[None, :]
    unit.diagonal().zero_()
    return unit, diagonal.square()


def ldlq_codes(weight: torch.Tensor, feedback: torch.Tensor, grid: Grid, columns: list[int], *,
               blocksize: int = 128, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Codes (as floats) of `weight` (in processing order) with the LDL feedback matrix A.

    The feedback from earlier blocks is added with one matrix product per block. Inside a
    block, each rounding error updates the later targets as a rank-1 update. Columns are
    handled as the contiguous rows of W^T.
    """
    rows_of = weight.T.contiguous()
    noise_rows = None if noise is None else noise.T
    count = rows_of.shape[0]
    codes = torch.zeros_like(rows_of)
    residual = torch.zeros_like(rows_of)  # rows of (W - Q)^T for the columns rounded so far
    for start in range(0, count, blocksize):
        end = min(start + blocksize, count)
        targets = rows_of[start:end] + feedback[:start, start:end].T @ residual[:start]
        for i in range(end - start):
            position = start + i
            column = columns[position]
            code = grid.encode(targets[i], column,
                               None if noise_rows is None else noise_rows[position])
            codes[position] = code
            residual[position] = rows_of[position] - grid.decode(code, column)
            targets[i + 1:].addr_(feedback[position, position + 1:end], residual[position])
    return codes.T


def greedy_passes(weight: torch.Tensor, hessian: torch.Tensor, codes: torch.Tensor, grid: Grid,
                  columns: list[int], *, npasses: int, blocksize: int = 128) -> int:
    """Improve `codes` (rows x columns, as floats) in place by up to `npasses` sweeps.

    Returns the number of sweeps run (fewer when a sweep changes nothing). The gradient
    G = S H is refreshed for each block with one matrix product and kept current inside
    the block by rank-1 updates.
    """
    count = weight.shape[1]
    column_index = torch.tensor(columns, device=weight.device)
    code_rows = codes.T.contiguous()
    quantized = grid.decode(codes, column_index).T.contiguous()
    residual = quantized - weight.T
    diagonal = torch.diagonal(hessian)
    sweeps = 0
    for sweeps in range(1, npasses + 1):
        before = code_rows.clone()
        for start in range(0, count, blocksize):
            end = min(start + blocksize, count)
            gradient = hessian[start:end] @ residual
            for i in range(end - start):
                position = start + i
                column = columns[position]
                target = quantized[position] - gradient[i] / diagonal[position]
                code = grid.encode(target, column)
                value = grid.decode(code, column)
                change = value - quantized[position]
                code_rows[position] = code
                quantized[position] = value
                residual[position] += change
                gradient[i:].addr_(hessian[position, position:end], change)
        if torch.equal(before, code_rows):
            break
    codes.copy_(code_rows.T)
    return sweeps
