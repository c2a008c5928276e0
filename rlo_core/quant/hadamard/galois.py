"""Finite fields GF(p^r) small enough to tabulate, for the Paley constructions.

An element is encoded as the integer sum(c_i * p^i) of its polynomial coefficients c_i
over GF(p). Only the quadratic character is needed, so the field is built once and
returned as a table of subtractions and a table of squares.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np


def prime_power(q: int) -> tuple[int, int] | None:
    """Return (p, r) with q = p**r for a prime p, or None when q is not a prime power."""
    if q < 2:
        return None
    p = next(d for d in itertools.chain([2], range(3, q + 1, 2)) if q % d == 0)
    r, rest = 0, q
    while rest % p == 0:
        rest //= p
        r += 1
    return (p, r) if rest == 1 else None


def _poly_mod(coefficients: list[int], modulus: list[int], p: int) -> list[int]:
    """Remainder of a polynomial (lowest degree first) by a monic modulus over GF(p)."""
    coefficients = list(coefficients)
    degree = len(modulus) - 1
    for shift in range(len(coefficients) - 1 - degree, -1, -1):
        lead = coefficients[shift + degree] % p
        if lead:
            for i, m in enumerate(modulus):
                coefficients[shift + i] = (coefficients[shift + i] - lead * m) % p
    return [c % p for c in coefficients[:degree]] + [0] * max(0, degree - len(coefficients))


def _has_factor_of_degree(modulus: list[int], p: int, degree: int) -> bool:
    for tail in itertools.product(range(p), repeat=degree):
        divisor = list(tail) + [1]
        if not any(_poly_mod(modulus, divisor, p)):
            return True
    return False


def irreducible_polynomial(p: int, r: int) -> list[int]:
    """Find the first monic irreducible polynomial of degree r over GF(p), lowest degree first.

    A polynomial of degree r is irreducible when no monic polynomial of degree 1..r//2
    divides it, which is checked by brute force (fine for the p**r below a few thousand used
    here).
    """
    for tail in itertools.product(range(p), repeat=r):
        candidate = list(tail) + [1]
        if candidate[0] == 0:
            continue  # divisible by x
        if not any(_has_factor_of_degree(candidate, p, d) for d in range(1, r // 2 + 1)):
            return candidate
    raise ValueError(f"no irreducible polynomial of degree {r} over GF({p})")


@functools.lru_cache(maxsize=16)
def quadratic_character_table(q: int) -> np.ndarray:
    """Return the matrix chi(a - b) for all field elements a, b of GF(q), as int8.

    chi is the quadratic character: 0 at zero, 1 on nonzero squares, -1 elsewhere.
    Raises ValueError when q is not a prime power.
    """
    factors = prime_power(q)
    if factors is None:
        raise ValueError(f"{q} is not a prime power")
    p, r = factors
    digits = np.array([[(x // p**i) % p for i in range(r)] for x in range(q)], dtype=np.int64)
    weights = p ** np.arange(r, dtype=np.int64)

    squares = np.zeros(q, dtype=bool)
    if r == 1:
        squares[(np.arange(1, q) ** 2) % q] = True
    else:
        modulus = irreducible_polynomial(p, r)
        for x in range(1, q):
            product = np.convolve(digits[x], digits[x]) % p
            squares[int(np.dot(_poly_mod(product.tolist(), modulus, p), weights))] = True
    character = np.where(squares, 1, -1).astype(np.int8)
    character[0] = 0

    differences = (digits[:, None, :] - digits[None, :, :]) % p
    return character[differences @ weights]
