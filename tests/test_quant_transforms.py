"""Hadamard constructions, orthogonal transforms and incoherence processing."""

import logging

import numpy as np
import pytest
import torch

from rlo_core.quant.hadamard import construction_for, hadamard_matrix, kronecker_split
from rlo_core.quant.hadamard.galois import prime_power
from rlo_core.quant.hessian import proxy_loss
from rlo_core.quant.incoherence import make_incoherent
from rlo_core.quant.transforms import OrthogonalTransform, make_transform


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These matrices are small, so thread synchronization costs more than it saves."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("order", [1, 2, 4, 12, 20, 28, 36, 100, 108, 148, 256, 344])
def test_hadamard_matrix_is_hadamard(order):
    matrix = hadamard_matrix(order).astype(np.int64)
    assert np.array_equal(matrix @ matrix.T, order * np.eye(order, dtype=np.int64))


@pytest.mark.parametrize("width, split", [(768, (12, 64)), (3072, (12, 256)), (11008, (344, 32)),
                                          (14336, (28, 512)), (4096, (1, 4096)), (100, (100, 1))])
def test_kronecker_split_of_model_widths(width, split):
    assert kronecker_split(width) == split


def test_order_without_construction():
    assert construction_for(172) is None


def test_prime_power_detection():
    assert prime_power(343) == (7, 3)
    assert prime_power(85) is None


@pytest.mark.parametrize("kind", ["hadamard", "kronecker"])
@pytest.mark.parametrize("width", [64, 768, 3072, 100])
def test_transform_is_orthogonal_and_inverted(kind, width):
    transform = make_transform(kind, width, seed=11)
    vectors = torch.randn(16, width, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    image = transform.apply(vectors)
    assert torch.allclose(image @ image.T, vectors @ vectors.T, rtol=0, atol=1e-9 * width)
    assert torch.allclose(transform.apply_transpose(image), vectors, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["hadamard", "kronecker", "dense"])
def test_full_matrix_is_orthogonal(kind):
    transform = OrthogonalTransform(kind, 100, seed=3)
    identity = torch.eye(100, dtype=torch.float64)
    matrix = transform.apply(identity, dim=0)
    assert torch.allclose(matrix @ matrix.T, identity, atol=1e-12)


def test_transform_along_rows_matches_matrix():
    transform = make_transform("hadamard", 24, seed=5)
    matrix = transform.apply(torch.eye(24, dtype=torch.float64), dim=0)
    weight = torch.randn(24, 7, dtype=torch.float64)
    assert torch.allclose(transform.apply(weight, dim=0), matrix @ weight, atol=1e-12)


def test_width_without_hadamard_falls_back(caplog):
    with caplog.at_level(logging.WARNING):
        transform = make_transform("hadamard", 70, seed=1)
    assert transform.kind == "dense"
    assert "70" in caplog.text


def test_same_seed_same_transform():
    first = OrthogonalTransform("hadamard", 768, seed=9).signs
    second = OrthogonalTransform("hadamard", 768, seed=9).signs
    other = OrthogonalTransform("hadamard", 768, seed=10).signs
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("kind", ["hadamard", "kronecker"])
def test_incoherence_keeps_proxy_loss(kind):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(48, 96, dtype=torch.float64, generator=generator)
    inputs = torch.randn(300, 96, dtype=torch.float64, generator=generator)
    hessian = inputs.T @ inputs / 300
    error = torch.randn(48, 96, dtype=torch.float64, generator=generator) * 0.01
    problem = make_incoherent(weight, hessian, transform=kind, left_seed=1, right_seed=2)
    # Map the error into the transformed basis: E' = U E diag(s) V^T.
    scale = problem.rescale.double()
    moved = problem.right.apply(problem.left.apply(error * scale, dim=0), dim=1)
    ridge = 0.01 * moved.square().sum()
    normalizer = 96 / torch.trace(hessian / scale[None, :] / scale[:, None])
    expected = proxy_loss(weight, weight + error, hessian) * normalizer + ridge
    assert proxy_loss(problem.weight, problem.weight + moved, problem.hessian) == pytest.approx(
        float(expected), rel=1e-9)


def test_incoherence_spreads_outliers():
    weight = torch.zeros(64, 64, dtype=torch.float64)
    weight[3, 5] = 10.0
    problem = make_incoherent(weight, torch.eye(64, dtype=torch.float64), transform="hadamard",
                              left_seed=1, right_seed=2)
    assert problem.weight.abs().max() < 0.5
