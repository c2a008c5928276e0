"""Seeded random orthogonal transforms for incoherence processing.

Each transform T of width n is rebuilt from (kind, n, seed) alone, so a checkpoint stores
only those three values. Random draws use a CPU `torch.Generator`, so the same seed gives
the same transform on every device.

- `hadamard`: T = (H_K kron H_(2^k)) S / sqrt(n) with a random sign diagonal S, applied in
  with n * (K + sum of the Sylvester chunk sizes) multiply-adds per vector.
- `kronecker`: T = (Q_1 kron Q_2) P with Haar-random orthogonal factors of sizes n_1 * n_2 = n
  (prime factors dealt alternately to the two factors) and a random permutation P.
- `dense`: a Haar-random orthogonal n x n matrix (QR of a Gaussian matrix, signs fixed).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import torch

from rlo_core.errors import ModelError
from rlo_core.quant.hadamard import hadamard_matrix, kronecker_split

log = logging.getLogger(__name__)

TRANSFORM_KINDS = ("hadamard", "kronecker", "dense")

# Dense transforms store n^2 values; above this width they are refused.
MAX_DENSE_WIDTH = 16384

_warned_widths: set[int] = set()


def derive_seed(seed: int, *parts: object) -> int:
    """Derive a 63-bit seed from a base seed and labels (layer name, side), stable across runs."""
    text = ":".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def _generator(seed: int) -> torch.Generator:
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return generator


def haar_orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    """Draw a Haar-distributed orthogonal matrix in float64 (QR of a Gaussian, R's signs fixed)."""
    gaussian = torch.randn(n, n, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1
    return q * signs


def _prime_factors(n: int) -> list[int]:
    factors, d = [], 2
    while d * d <= n:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1
    if n > 1:
        factors.append(n)
    return factors


def _move_last(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, int]:
    dim = dim % x.dim()
    return x.movedim(dim, -1), dim


def kron_apply(x: torch.Tensor, factors: list[torch.Tensor],
               transpose: bool = False) -> torch.Tensor:
    """Multiply every vector along the last axis of x by kron(factors[0], factors[1], ...).

    The product is never formed: x is viewed as (..., d_1, ..., d_r) and each square factor
    is applied along its own axis with one matrix product, so a width-n vector
    costs n * sum(d_i) multiply-adds. With `transpose`, the transposed product is applied.
    """
    lead = x.shape[:-1]
    sizes = [factor.shape[0] for factor in factors]
    rows = x.reshape(-1, *sizes)
    for axis, factor in enumerate(factors, start=1):
        matrix = factor if transpose else factor.T
        moved = rows.movedim(axis, -1)
        product = (moved.reshape(-1, factor.shape[0]) @ matrix).reshape(moved.shape)
        rows = product.movedim(-1, axis)
    return rows.reshape(*lead, math.prod(sizes))


def sylvester_chunks(power: int, largest: int = 256) -> list[int]:
    """Split 2^k into powers of two of at most `largest`, since H_(ab) = H_a kron H_b."""
    chunks = []
    while power > 1:
        chunk = min(power, largest)
        chunks.append(chunk)
        power //= chunk
    return chunks


@dataclass
class OrthogonalTransform:
    """A seeded orthogonal n x n transform T, applied to the vectors along one axis."""

    kind: str
    n: int
    seed: int

    def __post_init__(self) -> None:
        generator = _generator(self.seed)
        if self.kind == "hadamard":
            split = kronecker_split(self.n)
            if split is None:
                raise ValueError(f"width {self.n} has no Hadamard construction")
            self.order, self.power = split
            bits = torch.randint(0, 2, (self.n,), generator=generator)
            self.signs = bits.to(torch.float64) * 2 - 1
            orders = ([self.order] if self.order > 1 else []) + sylvester_chunks(self.power)
            self.factors = [torch.from_numpy(hadamard_matrix(order).astype("float64"))
                            for order in orders]
        elif self.kind == "kronecker":
            primes = _prime_factors(self.n)
            self.sizes = (math.prod(primes[0::2]), math.prod(primes[1::2]))
            self.permutation = torch.randperm(self.n, generator=generator)
            self.inverse_permutation = torch.argsort(self.permutation)
            self.factors = [haar_orthogonal(size, generator) for size in self.sizes]
        elif self.kind == "dense":
            if self.n > MAX_DENSE_WIDTH:
                raise ModelError(
                    f"A dense random orthogonal transform of width {self.n} would need "
                    f"{self.n}^2 values. Use --incoh-transform kronecker for this model.")
            self.matrix = haar_orthogonal(self.n, generator)
        else:
            raise ValueError(f"unknown transform kind {self.kind!r}")

    def spec(self) -> dict:
        return {"kind": self.kind, "n": self.n, "seed": self.seed}

    def apply(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """Return T v for every vector v along `dim` of x."""
        x, dim = _move_last(x, dim)
        return self._forward(x).movedim(-1, dim)

    def apply_transpose(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """Return T^T v (the inverse) for every vector v along `dim` of x."""
        x, dim = _move_last(x, dim)
        return self._backward(x).movedim(-1, dim)

    def _factors(self, like: torch.Tensor) -> list[torch.Tensor]:
        return [factor.to(device=like.device, dtype=like.dtype) for factor in self.factors]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "hadamard":
            y = x * self.signs.to(device=x.device, dtype=x.dtype)
            return kron_apply(y, self._factors(x)) / math.sqrt(self.n)
        if self.kind == "kronecker":
            return kron_apply(x[..., self.permutation.to(x.device)], self._factors(x))
        return x @ self.matrix.to(device=x.device, dtype=x.dtype).T

    def _backward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "hadamard":
            y = kron_apply(x, self._factors(x), transpose=True) / math.sqrt(self.n)
            return y * self.signs.to(device=x.device, dtype=x.dtype)
        if self.kind == "kronecker":
            y = kron_apply(x, self._factors(x), transpose=True)
            return y[..., self.inverse_permutation.to(x.device)]
        return x @ self.matrix.to(device=x.device, dtype=x.dtype)


def make_transform(kind: str, n: int, seed: int) -> OrthogonalTransform:
    """Build the transform of `kind` for width n.

    A Hadamard request for a width with no construction falls back to a dense random
    orthogonal matrix and logs a warning, once per width.
    """
    if kind == "hadamard" and kronecker_split(n) is None:
        if n not in _warned_widths:
            _warned_widths.add(n)
            log.warning("Width %d has no Hadamard construction (n = K * 2^k with a known "
                        "order K); using dense random orthogonal transforms for it.", n)
        kind = "dense"
    return OrthogonalTransform(kind, n, seed)
