"""Matrix-level tests of the rounding methods, grids and Hessian handling."""

import logging

import pytest
import torch

from rlo_core.errors import ModelError
from rlo_core.quant.grids import fit_minmax, fit_symmetric
from rlo_core.quant.hessian import (HessianAccumulator, damp, factorize_with_retry,
                                    fix_dead_inputs, proxy_loss)
from rlo_core.quant.ldlq import ldl_upper
from rlo_core.quant.linear import RoundingSettings, quantize_linear
from rlo_core.quant.methods import quantize_matrix


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These matrices are small, so thread synchronization costs more than it saves."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_problem(seed, rows=24, columns=48, samples=200, dtype=torch.float64):
    """A weight matrix and a positive definite H = E[x x^T] with unequal input scales."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, columns, generator=generator, dtype=dtype)
    scales = torch.rand(columns, generator=generator, dtype=dtype) * 3 + 0.1
    inputs = torch.randn(samples, columns, generator=generator, dtype=dtype) * scales
    mixing = torch.randn(columns, columns, generator=generator, dtype=dtype) * 0.3
    inputs = inputs + inputs @ mixing
    return weight, damp(inputs.T @ inputs / samples, 0.01)


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_ldlq_codes_equal_optq_codes(bits, act_order):
    for seed in range(3):
        weight, hessian = random_problem(seed)
        optq = quantize_matrix(weight, hessian, method="gptq", bits=bits, act_order=act_order,
                               blocksize=16)
        ldlq = quantize_matrix(weight, hessian, method="ldlq", bits=bits, act_order=act_order,
                               blocksize=32)
        assert torch.equal(optq.codes, ldlq.codes)


def test_lazy_blocks_do_not_change_codes():
    weight, hessian = random_problem(5)
    blocked = quantize_matrix(weight, hessian, method="gptq", bits=3, blocksize=8)
    unblocked = quantize_matrix(weight, hessian, method="gptq", bits=3, blocksize=10**9)
    assert torch.equal(blocked.codes, unblocked.codes)


def test_ldl_upper_reconstructs_hessian():
    _, hessian = random_problem(1)
    feedback, diagonal = ldl_upper(hessian)
    unit = feedback + torch.eye(hessian.shape[0], dtype=hessian.dtype)
    assert torch.allclose(unit @ torch.diag(diagonal) @ unit.T, hessian, atol=1e-10)
    assert torch.equal(torch.tril(feedback), torch.zeros_like(feedback))


def test_ldlq_loss_equals_weighted_rounding_error():
    """tr(E H E^T) = tr(eta D eta^T) with eta = E (A + I), the per-column rounding errors."""
    weight, hessian = random_problem(2)
    result = quantize_matrix(weight, hessian, method="ldlq", bits=2)
    error = weight - result.dequantize()
    feedback, diagonal = ldl_upper(hessian)
    eta = error @ (feedback + torch.eye(hessian.shape[0], dtype=hessian.dtype))
    assert proxy_loss(weight, result.dequantize(), hessian) == pytest.approx(
        float((eta.square() * diagonal).sum()), rel=1e-9)


@pytest.mark.parametrize("bits", [2, 3])
def test_proxy_loss_order_of_methods(bits):
    losses = {"nearest": 0.0, "ldlq": 0.0, "ldlqRG": 0.0}
    for seed in range(6):
        weight, hessian = random_problem(seed)
        for method in losses:
            result = quantize_matrix(weight, hessian, method=method, bits=bits, npasses=5)
            losses[method] += proxy_loss(weight, result.dequantize(), hessian)
    assert losses["ldlqRG"] <= losses["ldlq"]
    assert losses["ldlq"] <= losses["nearest"]


def test_greedy_passes_never_increase_loss():
    weight, hessian = random_problem(7)
    previous = None
    for npasses in range(0, 4):
        result = quantize_matrix(weight, hessian, method="ldlqRG", bits=2, npasses=npasses)
        loss = proxy_loss(weight, result.dequantize(), hessian)
        if previous is not None:
            assert loss <= previous + 1e-12
        previous = loss


@pytest.mark.parametrize("method", ["nearest", "gptq", "ldlq", "ldlqRG"])
@pytest.mark.parametrize("incoherence", [False, True])
def test_singular_hessian_quantizes(method, incoherence):
    """A dead input and fewer samples than inputs make H singular; quantization must work."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(16, 40, generator=generator)
    inputs = torch.randn(10, 40, generator=generator, dtype=torch.float64)
    inputs[:, 3] = 0
    settings = RoundingSettings(method=method, bits=2, incoherence=incoherence, npasses=2)
    result = quantize_linear("layer.0.fc", weight, inputs.T @ inputs / 10, settings)
    assert torch.isfinite(result.weight).all()
    assert result.proxy_loss >= 0


def test_dead_input_column_is_zeroed():
    hessian = torch.eye(4, dtype=torch.float64)
    hessian[2, 2] = 0
    weight = torch.ones(3, 4, dtype=torch.float64)
    dead = fix_dead_inputs(hessian, weight)
    assert dead.tolist() == [False, False, True, False]
    assert torch.equal(weight[:, 2], torch.zeros(3, dtype=torch.float64))
    assert hessian[2, 2] == 1


def test_factorization_retry_logs_layer(caplog):
    hessian = torch.eye(6, dtype=torch.float32)
    hessian[0, 0] = -1e-3  # indefinite: the first attempt fails, extra damping fixes it
    with caplog.at_level(logging.WARNING):
        factor, used = factorize_with_retry(hessian, torch.linalg.cholesky,
                                            name="layers.3.fc1", percdamp=0.01)
    assert torch.isfinite(factor).all()
    assert used[0, 0] > 0
    assert "layers.3.fc1" in caplog.text


def test_factorization_failure_names_layer():
    hessian = -torch.eye(4, dtype=torch.float64)
    with pytest.raises(ModelError, match="layers.1.q_proj"):
        factorize_with_retry(hessian, torch.linalg.cholesky, name="layers.1.q_proj",
                             percdamp=0.01)


def test_non_finite_hessian_names_layer():
    accumulator = HessianAccumulator(3, "cpu")
    accumulator.add(torch.tensor([[1.0, float("inf"), 0.0]]))
    with pytest.raises(ModelError, match="layers.0.v_proj"):
        accumulator.mean("layers.0.v_proj")


def test_accumulator_is_mean_outer_product():
    inputs = torch.randn(2, 5, 3)
    accumulator = HessianAccumulator(3, "cpu")
    accumulator.add(inputs)
    rows = inputs.reshape(-1, 3).double()
    assert torch.allclose(accumulator.mean("x"), rows.T @ rows / 10)


def test_minmax_grid_represents_zero():
    weight = torch.randn(8, 32)
    grid = fit_minmax(weight, 3)
    zeros = grid.decode(grid.encode(torch.zeros(8), 0), 0)
    assert torch.equal(zeros, torch.zeros(8))


def test_minmax_steps_are_float16_values():
    grid = fit_minmax(torch.randn(8, 32), 4, groupsize=8)
    assert grid.step.shape == (8, 4)
    assert torch.equal(grid.step, grid.step.half().float())


def test_symmetric_grid_is_symmetric():
    weight = torch.randn(16, 16)
    grid = fit_symmetric(weight, 2)
    levels = grid.decode(torch.arange(4.0), 0)
    assert torch.allclose(levels, -levels.flip(0))


def test_gptq_groups_fit_each_group():
    weight, hessian = random_problem(3, rows=8, columns=64)
    result = quantize_matrix(weight.float(), hessian, method="gptq", bits=3, groupsize=16)
    assert result.grid.step.shape == (8, 4)
    assert (result.grid.step != 1).all()


def test_groups_lower_the_proxy_loss():
    weight, hessian = random_problem(4, rows=8, columns=64)
    whole = quantize_matrix(weight, hessian, method="gptq", bits=2)
    grouped = quantize_matrix(weight, hessian, method="gptq", bits=2, groupsize=16)
    assert proxy_loss(weight, grouped.dequantize(), hessian) < proxy_loss(
        weight, whole.dequantize(), hessian)


def test_unbiased_rounding_mean_matches_weight():
    weight = torch.full((100, 42), 0.3, dtype=torch.float64)
    weight[:, 0], weight[:, 1] = -1.0, 1.0  # fix each row's grid range to [-1, 1]
    generator = torch.Generator().manual_seed(0)
    result = quantize_matrix(weight, torch.eye(42, dtype=torch.float64), method="nearest",
                             bits=2, unbiased=True, generator=generator)
    values = result.dequantize()[:, 2:]
    assert values.mean().item() == pytest.approx(0.3, abs=0.02)
    assert len(values.unique()) == 2
