"""A quantized linear weight as stored: codes, grid, rescaling vector and transform seeds.

The dense weight is rebuilt by `reconstruct`, the only path from codes to weights. The
quantization run and `--load` both use it, so a loaded model is bit-identical to the model
measured at save time when both run on the same kind of device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from rlo_core.quant.grids import Grid
from rlo_core.quant.transforms import OrthogonalTransform


@dataclass
class QuantizedLinear:
    """Everything needed to rebuild one nn.Linear weight of shape (out, in).

    With incoherence processing, the codes quantize U diag-rescaled(W) V^T; `rescale` is the
    per-input scale s (W' = W diag(s)) and `left`/`right` the specs of U and V.
    """

    name: str
    shape: tuple[int, int]
    bits: int
    codes: torch.Tensor  # uint8 (out, in), original column order
    step: torch.Tensor  # float32 (rows or 1, groups or 1)
    zero: torch.Tensor  # float32, same shape as step
    groupsize: int
    grid_kind: str  # "minmax" or "symmetric"
    rescale: Optional[torch.Tensor] = None  # float32 (in,)
    left: Optional[dict] = None  # {"kind", "n", "seed"} of U
    right: Optional[dict] = None  # {"kind", "n", "seed"} of V

    def grid(self, device: torch.device | str, dtype: torch.dtype) -> Grid:
        return Grid(self.bits, self.step.to(device, dtype), self.zero.to(device, dtype),
                    self.groupsize, self.grid_kind)

    def reconstruct(self, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Rebuild the dense weight on `device` in `dtype` (float64 by default)."""
        codes = self.codes.to(device=device, dtype=dtype)
        weight = self.grid(device, dtype).decode_matrix(codes)
        if self.left is not None:
            weight = transform_from_spec(self.left).apply_transpose(weight, dim=0)
        if self.right is not None:
            weight = transform_from_spec(self.right).apply_transpose(weight, dim=1)
        if self.rescale is not None:
            weight = weight / self.rescale.to(device=device, dtype=dtype)[None, :]
        return weight


def transform_from_spec(spec: dict) -> OrthogonalTransform:
    return OrthogonalTransform(spec["kind"], int(spec["n"]), int(spec["seed"]))
