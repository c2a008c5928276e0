"""Hadamard matrices built from known constructions, and the split n = K * 2^k they serve.

A Hadamard matrix of order K has entries +-1 and satisfies H H^T = K I; orders above 2 are
multiples of 4. The randomized Hadamard transform of width n = K * 2^k multiplies by
H_K kron H_(2^k), so it needs one matrix of order K and the fast Walsh-Hadamard butterfly.

Constructions (generated on demand and cached, not stored):
- Sylvester: orders 2^k.
- Paley I: order q + 1 for a prime power q = 3 (mod 4). Covers 12 (q = 11), 20 (19),
  28 (27 = 3^3), 108 (107) and 344 (343 = 7^3, used for 11008 = 344 * 32).
- Paley II: order 2(q + 1) for a prime power q = 1 (mod 4). Covers 36 (17), 100 (49 = 7^2)
  and 148 (73).
Order 172 has neither construction (171 and 85 are not prime powers), so widths such as
11008 use order 344 instead.
"""

from __future__ import annotations

import functools

import numpy as np

from rlo_core.quant.hadamard.galois import prime_power, quadratic_character_table

# Largest order K tried for the Kronecker factor: the transform costs about n * K
# multiply-adds per vector, and the field tables grow as K^2.
MAX_ORDER = 1024


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def sylvester(order: int) -> np.ndarray:
    matrix = np.ones((1, 1), dtype=np.int8)
    while matrix.shape[0] < order:
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    return matrix


def paley_one(q: int) -> np.ndarray:
    """Order q + 1 for a prime power q = 3 (mod 4): H = I + [[0, 1^T], [-1, Q]]."""
    jacobsthal = quadratic_character_table(q)
    skew = np.zeros((q + 1, q + 1), dtype=np.int8)
    skew[0, 1:] = 1
    skew[1:, 0] = -1
    skew[1:, 1:] = jacobsthal
    return skew + np.eye(q + 1, dtype=np.int8)


def paley_two(q: int) -> np.ndarray:
    """Order 2(q + 1) for a prime power q = 1 (mod 4), from the symmetric conference matrix C:
    H = C kron [[1, 1], [1, -1]] + I kron [[1, -1], [-1, -1]]."""
    conference = np.zeros((q + 1, q + 1), dtype=np.int8)
    conference[0, 1:] = 1
    conference[1:, 0] = 1
    conference[1:, 1:] = quadratic_character_table(q)
    plus = np.array([[1, 1], [1, -1]], dtype=np.int8)
    minus = np.array([[1, -1], [-1, -1]], dtype=np.int8)
    return np.kron(conference, plus) + np.kron(np.eye(q + 1, dtype=np.int8), minus)


def construction_for(order: int) -> str | None:
    """Name of the construction that yields a Hadamard matrix of `order`, or None."""
    if _is_power_of_two(order):
        return "sylvester"
    if order % 4 or order > MAX_ORDER:
        return None
    factors = prime_power(order - 1)
    if factors is not None and (order - 1) % 4 == 3:
        return "paley-1"
    factors = prime_power(order // 2 - 1)
    if factors is not None and (order // 2 - 1) % 4 == 1:
        return "paley-2"
    return None


@functools.lru_cache(maxsize=32)
def hadamard_matrix(order: int) -> np.ndarray:
    """Build a Hadamard matrix of `order` as a read-only int8 array.

    Raises ValueError when no construction is known for `order`.
    """
    construction = construction_for(order)
    if construction == "sylvester":
        matrix = sylvester(order)
    elif construction == "paley-1":
        matrix = paley_one(order - 1)
    elif construction == "paley-2":
        matrix = paley_two(order // 2 - 1)
    else:
        raise ValueError(f"no Hadamard construction for order {order}")
    matrix.setflags(write=False)
    return matrix


def kronecker_split(n: int) -> tuple[int, int] | None:
    """Return (K, 2^k) with K * 2^k = n and a constructible order K, choosing the smallest K.

    K = 1 when n is a power of two. Returns None when no split exists (for example odd n
    above 1, or n = 2 * odd) or every candidate K exceeds MAX_ORDER.
    """
    if n < 1:
        return None
    twos = (n & -n).bit_length() - 1
    odd = n >> twos
    if odd == 1:
        return 1, n
    for extra in range(2, twos + 1):
        order = odd << extra
        if order > MAX_ORDER:
            break
        if construction_for(order) is not None:
            return order, n // order
    return None
