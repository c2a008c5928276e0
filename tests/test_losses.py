"""Values, gradients, masking and numerical stability of the loss functions."""

import math

import pytest
import torch
import torch.nn.functional as F

from rlo_core.losses import (
    build_loss,
    binary_rooted_logistic,
    focal_loss,
    rlo_convex_loss,
    rlo_loss,
)


def naive_rlo(logits, target, k, m):
    p = torch.softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
    return m * (1 - p.pow(1 / k))


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 7, dtype=torch.float64, generator=generator) * 3
    target = torch.randint(0, 7, (16,), generator=generator)
    return logits, target


def test_rlo_matches_formula_float64(batch):
    logits, target = batch
    expected = naive_rlo(logits, target, 3.0, 3.0)
    actual = rlo_loss(logits, target, k=3, m=3, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_rlo_convex_matches_formula_float64(batch):
    logits, target = batch
    p = torch.softmax(logits, -1).gather(1, target[:, None]).squeeze(1)
    expected = 4.0 * (p.pow(-1 / 4.0) - 1)
    actual = rlo_convex_loss(logits, target, k=4, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_focal_matches_formula_float64(batch):
    logits, target = batch
    p = torch.softmax(logits, -1).gather(1, target[:, None]).squeeze(1)
    expected = -0.25 * (1 - p).pow(3) * p.log()
    actual = focal_loss(logits, target, alpha=0.25, gamma=3, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", [
    lambda z, y: rlo_loss(z, y, k=3, m=3),
    lambda z, y: rlo_convex_loss(z, y, k=2),
    lambda z, y: focal_loss(z, y, gamma=3.0),
    lambda z, y: focal_loss(z, y, gamma=0.5),
])
def test_gradcheck(loss, batch):
    logits, target = batch
    logits = logits[:6].clone().requires_grad_(True)
    target = target[:6].clone()
    target[-1] = -100
    assert torch.autograd.gradcheck(lambda z: loss(z, target), (logits,))


def test_rlo_gradient_closed_form(batch):
    logits, target = batch
    logits = logits.clone().requires_grad_(True)
    k, m = 3.0, 5.0
    rlo_loss(logits, target, k=k, m=m, reduction="sum").backward()
    p = torch.softmax(logits.detach(), -1)
    p_y = p.gather(1, target[:, None])
    expected = (m / k) * p_y.pow(1 / k) * (p - F.one_hot(target, 7))
    torch.testing.assert_close(logits.grad, expected, rtol=1e-10, atol=1e-12)


def test_rlo_ignore_index_mean_counts_valid_only(batch):
    logits, target = batch
    masked = target.clone()
    masked[::2] = -100
    per_sample = rlo_loss(logits, target, reduction="none")
    expected = per_sample[1::2].mean()
    torch.testing.assert_close(rlo_loss(logits, masked), expected)
    assert rlo_loss(logits, masked, reduction="none")[::2].abs().sum() == 0


def test_rlo_ignored_positions_get_no_gradient(batch):
    logits, target = batch
    logits = logits.clone().requires_grad_(True)
    masked = target.clone()
    masked[:4] = -100
    rlo_loss(logits, masked).backward()
    assert logits.grad[:4].abs().sum() == 0


def test_class_weights_like_cross_entropy(batch):
    logits, target = batch
    weight = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    masked = target.clone()
    masked[0] = -100
    per_sample = rlo_loss(logits, masked, reduction="none")
    ce_weights = weight[masked.clamp_min(0)] * (masked != -100)
    expected = (per_sample * weight[masked.clamp_min(0)]).sum() / ce_weights.sum()
    torch.testing.assert_close(rlo_loss(logits, masked, weight=weight), expected)
    # With k = m large, the weighted mean approaches weighted cross-entropy.
    big = rlo_loss(logits, masked, k=1e5, m=1e5, weight=weight)
    reference = F.cross_entropy(logits, masked, weight=weight)
    assert abs(big.item() - reference.item()) / reference.item() < 1e-3


def test_spatial_shape_like_cross_entropy():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 3, 4, generator=generator)
    target = torch.randint(0, 5, (2, 3, 4), generator=generator)
    per_position = rlo_loss(logits, target, reduction="none")
    assert per_position.shape == (2, 3, 4)
    flat = rlo_loss(logits.movedim(1, -1).reshape(-1, 5), target.reshape(-1), reduction="none")
    torch.testing.assert_close(per_position.reshape(-1), flat)


def test_sum_reduction(batch):
    logits, target = batch
    torch.testing.assert_close(rlo_loss(logits, target, reduction="sum"),
                               rlo_loss(logits, target, reduction="none").sum())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_rlo_finite_with_underflowing_target(dtype):
    logits = torch.zeros(4, 50272)
    logits[:, 0] = 1e4  # the target probability exp(-1e4) underflows to 0
    logits = logits.to(dtype).requires_grad_(True)
    target = torch.tensor([1, 2, 3, 4])
    with torch.autocast("cpu", dtype=dtype):
        loss = rlo_loss(logits, target, k=3, m=3)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad.float()).all()
    assert loss.item() == pytest.approx(3.0, rel=1e-3)


def test_naive_form_is_nan_where_ours_is_finite():
    logits = torch.tensor([[200.0, 0.0, 0.0]], requires_grad=True)
    target = torch.tensor([1])
    naive_rlo(logits, target, 3.0, 3.0).sum().backward()
    assert torch.isnan(logits.grad).any()
    logits.grad = None
    rlo_loss(logits, target).backward()
    assert torch.isfinite(logits.grad).all()


def test_large_vocabulary_matches_cross_entropy_limit():
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 50272, generator=generator)
    target = torch.randint(0, 50272, (8,), generator=generator)
    reference = F.cross_entropy(logits, target)
    approx = rlo_loss(logits, target, k=1e4, m=1e4)
    assert abs(approx.item() - reference.item()) / reference.item() < 1e-3


def test_binary_minus_k_approaches_softplus():
    t = torch.linspace(-5, 5, 101, dtype=torch.float64)
    gaps = []
    for k in (2.0, 5.0, 20.0, 1e4):
        value = binary_rooted_logistic(t, 1.0, k=k, reduction="none") - k
        gaps.append((value - F.softplus(-t)).abs().max().item())
    assert gaps == sorted(gaps, reverse=True)
    # Largest gap over t in [-5, 5]: about 17.4 at k=2, 3.6 at k=5, 0.68 at k=20.
    assert gaps[0] == pytest.approx(17.4, abs=0.1)
    assert gaps[1] == pytest.approx(3.6, abs=0.1)
    assert gaps[2] == pytest.approx(0.68, abs=0.02)
    assert gaps[3] < 2e-3


def test_binary_matches_definition():
    t = torch.linspace(-20, 20, 41, dtype=torch.float64)
    for sign in (1.0, -1.0):
        expected = 2.0 * (1 + torch.exp(-sign * t)).pow(0.5)
        actual = binary_rooted_logistic(t, sign, k=2.0, reduction="none")
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=0)


def test_binary_finite_for_huge_logits():
    t = torch.tensor([-1e4, -100.0, 0.0, 1e4], requires_grad=True)
    loss = binary_rooted_logistic(t, 1.0, k=2.0, reduction="sum")
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(t.grad).all()
    assert (t.grad <= 0).all()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_invalid_k_raises(bad, batch):
    logits, target = batch
    with pytest.raises(ValueError, match="k must be"):
        rlo_loss(logits, target, k=bad)


def test_invalid_m_raises(batch):
    logits, target = batch
    with pytest.raises(ValueError, match="m must be"):
        rlo_loss(logits, target, m=0)


def test_registry_builds_by_name_and_alias():
    assert build_loss("root", k=5, m=5).k == 5
    assert build_loss("RLO", k=2, m=4).m == 4
    assert type(build_loss("ce")).__name__ == "CrossEntropyLoss"
    assert build_loss("focal", alpha=0.5, gamma=2).gamma == 2


def test_registry_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'focal'"):
        build_loss("focl")


def test_generalized_cross_entropy_identity(batch):
    logits, target = batch
    q = 1 / 3
    p = torch.softmax(logits, -1).gather(1, target[:, None]).squeeze(1)
    gce = (1 - p.pow(q)) / q
    torch.testing.assert_close(rlo_loss(logits, target, k=3, m=3, reduction="none"), gce)
    assert math.isclose(rlo_loss(logits, target, k=3, m=3).item(), gce.mean().item(),
                        rel_tol=1e-12)
