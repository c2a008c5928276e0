"""The layer Hessian H = E[x x^T] over calibration tokens, its repair, damping and factorization.

For a linear layer y = W x with W of shape (out, in), the proxy loss of a quantized weight Q
is tr((Q - W) H (Q - W)^T), the expected squared output error per token.
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

import torch

from rlo_core.errors import ModelError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Extra damping tried when a factorization fails, as multiples of the relative damping.
RETRY_DAMPING = (10.0, 100.0, 1000.0)


class HessianAccumulator:
    """Running sum of x x^T in float64 over the rows of every batch of inputs."""

    def __init__(self, columns: int, device: torch.device | str):
        self.sum = torch.zeros(columns, columns, dtype=torch.float64, device=device)
        self.tokens = 0

    def add(self, inputs: torch.Tensor) -> None:
        rows = inputs.reshape(-1, inputs.shape[-1]).to(self.sum.device, torch.float64)
        self.add_gram(rows.T @ rows, rows.shape[0])

    def add_gram(self, gram: torch.Tensor, tokens: int) -> None:
        """Add a precomputed sum of x x^T over `tokens` inputs (shared by layers that read
        the same input)."""
        self.sum += gram
        self.tokens += tokens

    def mean(self, name: str) -> torch.Tensor:
        """E[x x^T] in float64; raises ModelError when it is empty or not finite."""
        if self.tokens == 0:
            raise ModelError(f"Layer {name} received no calibration inputs, so its Hessian is "
                             "empty. Check that the model's forward pass reaches this layer.")
        hessian = self.sum / self.tokens
        if not torch.isfinite(hessian).all():
            raise ModelError(
                f"The Hessian of layer {name} contains NaN or infinite values: the model "
                "produced non-finite activations on the calibration data. Load the model in "
                "float32 (use --device cpu, or a float32 checkpoint) and check its weights.")
        return hessian


def fix_dead_inputs(hessian: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Set H_jj = 1 and W[:, j] = 0 (in place) for inputs j that were always zero.

    Returns the boolean mask of dead inputs. Such inputs do not affect the output, and
    the repair keeps H positive definite where it would be singular.
    """
    dead = torch.diagonal(hessian) == 0
    if dead.any():
        hessian[dead, dead] = 1
        weight[:, dead] = 0
    return dead


def damp(hessian: torch.Tensor, percdamp: float) -> torch.Tensor:
    """Return H + percdamp * mean(diag H) * I (a new tensor)."""
    damped = hessian.clone()
    damped.diagonal().add_(percdamp * torch.diagonal(hessian).mean())
    return damped


def proxy_loss(weight: torch.Tensor, quantized: torch.Tensor, hessian: torch.Tensor) -> float:
    """tr((Q - W) H (Q - W)^T), computed in float64."""
    error = (quantized.to(torch.float64) - weight.to(torch.float64)).to(hessian.device)
    return float(((error @ hessian.to(torch.float64)) * error).sum())


def factorize_with_retry(hessian: torch.Tensor, factorize: Callable[[torch.Tensor], T], *,
                         name: str, percdamp: float,
                         dtype: torch.dtype | None = None) -> tuple[T, torch.Tensor]:
    """Return (factorize(H'), H') for the first H' that factorizes.

    H' is `hessian` in `dtype` (default: its own), then with growing extra damping, then the
    same in float64. A factorization fails when it raises torch.linalg.LinAlgError or returns
    non-finite values. Raises ModelError naming the layer when every attempt fails.
    """
    relative = percdamp if percdamp > 0 else 0.01
    scale = torch.diagonal(hessian).mean()
    first = dtype or hessian.dtype
    dtypes = [first] if first == torch.float64 else [first, torch.float64]
    attempts = [(dtype, extra) for dtype in dtypes for extra in (0.0, *RETRY_DAMPING)]
    for number, (dtype, extra) in enumerate(attempts):
        candidate = hessian.to(dtype)
        if extra:
            candidate = candidate.clone()
            candidate.diagonal().add_(extra * relative * scale.to(dtype))
        try:
            result = factorize(candidate)
        except torch.linalg.LinAlgError:
            continue
        if not _all_finite(result):
            continue
        if number:
            log.warning("Layer %s: the Hessian factorization needed %s with extra damping "
                        "%g x mean(diag H).", name, str(dtype).replace("torch.", ""),
                        extra * relative)
        return result, candidate
    raise ModelError(
        f"The Hessian of layer {name} could not be factorized even with damping "
        f"{RETRY_DAMPING[-1] * relative:g} x mean(diag H) in float64. Use more calibration "
        "samples (--nsamples) or a larger --percdamp.")


def _all_finite(result: object) -> bool:
    tensors = result if isinstance(result, (tuple, list)) else (result,)
    return all(torch.isfinite(t).all() for t in tensors if isinstance(t, torch.Tensor))
