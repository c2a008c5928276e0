"""Incoherence processing (QuIP): make W and H incoherent before rounding, undo it after.

Steps, all in float64:
1. Diagonal rescaling. With H scaled to max |H_ij| = 1, s_j = (H_jj / ||W[:, j]||^2)^(1/4)
   (both terms clamped at 1e-8); W <- W diag(s) and H <- diag(s)^-1 H diag(s)^-1. This leaves
   the proxy loss tr(E H E^T) unchanged and balances the columns.
2. Normalization: H <- H * n / tr(H) + 0.01 I.
3. Two-sided random orthogonal transforms: W <- U W V^T and H <- V H V^T, which leave the
   proxy loss unchanged and spread outliers over all entries.
The caller then damps H, quantizes W with one symmetric grid, and
`QuantizedLinear.reconstruct` undoes the transforms and the rescaling exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlo_core.quant.transforms import OrthogonalTransform, make_transform

# Ridge added to the trace-normalized Hessian (QuIP's value).
NORMALIZED_RIDGE = 0.01


@dataclass
class IncoherentProblem:
    """Transformed weight and Hessian, and what is needed to undo the transformation."""

    weight: torch.Tensor
    hessian: torch.Tensor
    rescale: torch.Tensor  # float32 (in,), the s applied as W diag(s)
    left: OrthogonalTransform
    right: OrthogonalTransform


def rescale_vector(weight: torch.Tensor, hessian: torch.Tensor) -> torch.Tensor:
    """s_j = (H_jj / ||W[:, j]||^2)^(1/4) with H scaled to max 1, rounded to float32 (as stored)."""
    scaled = hessian / hessian.abs().max()
    diagonal = torch.diagonal(scaled).clamp(min=1e-8)
    column_norms = weight.square().sum(dim=0).clamp(min=1e-8)
    scale = (diagonal / column_norms).sqrt().sqrt().clamp(min=1e-8)
    return scale.to(torch.float32)


def make_incoherent(weight: torch.Tensor, hessian: torch.Tensor, *, transform: str,
                    left_seed: int, right_seed: int) -> IncoherentProblem:
    """Apply steps 1-3 to a repaired (dead inputs fixed) weight and Hessian."""
    weight = weight.to(torch.float64)
    hessian = hessian.to(torch.float64)
    rows, columns = weight.shape

    rescale = rescale_vector(weight, hessian)
    scale = rescale.to(weight.device, torch.float64)
    weight = weight * scale[None, :]
    hessian = hessian / scale[None, :] / scale[:, None]

    hessian = hessian * (columns / torch.trace(hessian))
    hessian.diagonal().add_(NORMALIZED_RIDGE)

    left = make_transform(transform, rows, left_seed)
    right = make_transform(transform, columns, right_seed)
    weight = right.apply(left.apply(weight, dim=0), dim=1)
    hessian = right.apply(right.apply(hessian, dim=0), dim=1)
    hessian = (hessian + hessian.T) / 2  # remove the rounding asymmetry of the two products
    return IncoherentProblem(weight, hessian, rescale, left, right)
