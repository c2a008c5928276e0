"""Uniform quantization grids: value = step * (code - zero), with code in 0 .. 2^bits - 1.

Two grids are fitted here:
- `fit_minmax`: per output channel (and per group of `groupsize` input columns), asymmetric
  min-max. The range [min(w, 0), max(w, 0)] maps onto the codes with an integer zero point,
  so 0 is exactly representable. Steps are rounded to float16 when fitted, because the
  checkpoint stores them in float16 and the model must use exactly the stored grid.
- `fit_symmetric`: one scale for the whole matrix, used with incoherence processing. The
  2^bits levels span [-c, c] evenly with c = 2.4 * RMS(W), so step = 2c / (2^bits - 1) and
  zero = (2^bits - 1) / 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# RMS multiple that sets the clipping range of the symmetric grid (QuIP's choice for
# incoherent weights, whose entries are close to Gaussian).
SYMMETRIC_RANGE = 2.4

# Smallest normal float16 number: steps are kept at or above it so they survive storage.
MIN_STEP = 2.0 ** -14


@dataclass
class Grid:
    """Step and zero point per (output row, input group); rows or groups may broadcast (size 1).

    `kind` is "minmax" (integer zero points, float16 steps) or "symmetric" (one float32 step,
    zero at the middle of the code range).
    """

    bits: int
    step: torch.Tensor  # (rows or 1, groups or 1)
    zero: torch.Tensor  # same shape as step
    groupsize: int  # input columns per group; the column count when there are no groups
    kind: str

    @property
    def maxq(self) -> int:
        return 2 ** self.bits - 1

    def column_params(self, column: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Step and zero for one original column index (or a 1-D tensor of indices)."""
        group = column // self.groupsize
        return self.step[:, group], self.zero[:, group]

    def encode(self, values: torch.Tensor, column: int | torch.Tensor,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (as floats) for the values of one column, or of the columns in `column`.

        Without `noise` the values round to the nearest level. With uniform noise in [0, 1)
        of the same shape, floor(x + noise) rounds stochastically and without bias inside
        the grid range.
        """
        step, zero = self.column_params(column)
        scaled = values / step + zero
        codes = torch.round(scaled) if noise is None else torch.floor(scaled + noise)
        return codes.clamp_(0, self.maxq)

    def decode(self, codes: torch.Tensor, column: int | torch.Tensor) -> torch.Tensor:
        step, zero = self.column_params(column)
        return step * (codes - zero)

    def encode_matrix(self, weight: torch.Tensor) -> torch.Tensor:
        return self.encode(weight, torch.arange(weight.shape[1], device=weight.device))

    def decode_matrix(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decode(codes, torch.arange(codes.shape[1], device=codes.device))

    def to(self, device: torch.device | str, dtype: torch.dtype) -> "Grid":
        return Grid(self.bits, self.step.to(device, dtype), self.zero.to(device, dtype),
                    self.groupsize, self.kind)


def minmax_params(block: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Step and integer zero point per row of `block` (rows x columns)."""
    maxq = 2 ** bits - 1
    low = block.min(dim=1).values.clamp(max=0)
    high = block.max(dim=1).values.clamp(min=0)
    empty = (high - low) == 0
    low = torch.where(empty, torch.full_like(low, -1.0), low)
    high = torch.where(empty, torch.full_like(high, 1.0), high)
    step = ((high - low) / maxq).clamp(min=MIN_STEP)
    step = step.to(torch.float16).to(block.dtype)
    zero = torch.round(-low / step).clamp(0, maxq)
    return step, zero


def fit_minmax(weight: torch.Tensor, bits: int, groupsize: int | None = None) -> Grid:
    """Per-row (and per-group) asymmetric min-max grid fitted to `weight` (rows x columns)."""
    rows, columns = weight.shape
    size = groupsize or columns
    groups = -(-columns // size)
    step = torch.empty(rows, groups, dtype=weight.dtype, device=weight.device)
    zero = torch.empty_like(step)
    for group in range(groups):
        block = weight[:, group * size:(group + 1) * size]
        step[:, group], zero[:, group] = minmax_params(block, bits)
    return Grid(bits, step, zero, size, "minmax")


def empty_minmax(rows: int, columns: int, bits: int, groupsize: int,
                 like: torch.Tensor) -> Grid:
    """Allocate a min-max grid whose groups GPTQ fills in when it reaches each group."""
    groups = -(-columns // groupsize)
    step = torch.ones(rows, groups, dtype=like.dtype, device=like.device)
    return Grid(bits, step, torch.zeros_like(step), groupsize, "minmax")


def fit_symmetric(weight: torch.Tensor, bits: int) -> Grid:
    """Fit one symmetric grid for the whole matrix, spanning +-2.4 RMS of its entries."""
    maxq = 2 ** bits - 1
    rms = weight.double().square().mean().sqrt()
    clip = SYMMETRIC_RANGE * rms + 1e-16
    step = (2 * clip / maxq).to(torch.float32).to(weight.dtype).reshape(1, 1)
    zero = torch.full((1, 1), maxq / 2, dtype=weight.dtype, device=weight.device)
    return Grid(bits, step, zero, weight.shape[1], "symmetric")
