"""GAN losses: formulas against their definitions, and finiteness for huge logits."""

import pytest
import torch

from rlo_core.gan.losses import discriminator_loss, generator_loss, r1_penalty

LOGITS = torch.linspace(-30.0, 30.0, 121, dtype=torch.float64)


def rooted(t: torch.Tensor, k: float) -> torch.Tensor:
    return k * (1.0 + torch.exp(-t)) ** (1.0 / k)


def logistic(t: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(-t))


@pytest.mark.parametrize("k", [1.0, 2.0, 5.0])
def test_rlo_generator_loss_matches_definition(k):
    expected = rooted(LOGITS, k).mean()
    actual = generator_loss(LOGITS, loss="rlo", k=k).double()
    assert torch.allclose(actual, expected, rtol=1e-6)


@pytest.mark.parametrize("k", [1.0, 2.0, 5.0])
def test_rlo_discriminator_loss_matches_definition(k):
    real, fake = LOGITS, LOGITS.flip(0) * 0.5
    expected = rooted(-fake, k).mean() + rooted(real, k).mean()
    actual = discriminator_loss(real, fake, loss="rlo", k=k).double()
    assert torch.allclose(actual, expected, rtol=1e-6)


def test_ce_losses_match_softplus_definition():
    real, fake = LOGITS, LOGITS.flip(0) * 0.5
    g_expected = logistic(fake).mean()
    d_expected = logistic(-fake).mean() + logistic(real).mean()
    assert torch.allclose(generator_loss(fake, loss="ce").double(), g_expected, rtol=1e-6)
    assert torch.allclose(discriminator_loss(real, fake, loss="ce").double(), d_expected,
                          rtol=1e-6)


def test_rlo_generator_gradient_matches_definition():
    ours = LOGITS.clone().requires_grad_(True)
    generator_loss(ours, loss="rlo", k=2.0).backward()
    reference = LOGITS.clone().requires_grad_(True)
    rooted(reference, 2.0).mean().backward()
    assert torch.allclose(ours.grad, reference.grad, rtol=1e-5, atol=1e-12)


def test_rlo_approaches_logistic_at_large_k():
    # l_k(t) - k tends to softplus(-t) as k grows.
    k = 1e4
    t = torch.linspace(-5.0, 5.0, 21, dtype=torch.float64)
    gap = (rooted(t, k) - k - logistic(t)).abs().max()
    assert gap < 0.01


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="Unknown GAN loss"):
        generator_loss(torch.zeros(2), loss="hinge")


@pytest.mark.parametrize("loss", ["rlo", "ce"])
@pytest.mark.parametrize("magnitude", [1e2, 1e3, 1e4])
def test_losses_finite_for_huge_logits_fp32(loss, magnitude):
    logits = torch.tensor([-magnitude, magnitude, -magnitude / 2, 0.0]).requires_grad_(True)
    g_loss = generator_loss(logits, loss=loss)
    d_loss = discriminator_loss(logits, logits.flip(0), loss=loss)
    (g_loss + d_loss).backward()
    assert torch.isfinite(g_loss)
    assert torch.isfinite(d_loss)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("loss", ["rlo", "ce"])
def test_losses_finite_under_cpu_autocast_bf16(loss):
    layer = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1e4, -1e4, 0.0, 0.0]]))
    inputs = torch.tensor([[1.0, 0.0, 0, 0], [0.0, 1.0, 0, 0], [0.5, 0.0, 0, 0],
                           [0.0, 0.0, 1, 0]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(inputs).squeeze(1)
        g_loss = generator_loss(logits, loss=loss)
        d_loss = discriminator_loss(logits, -logits, loss=loss)
    (g_loss + d_loss).backward()
    assert logits.dtype == torch.bfloat16
    assert logits.abs().max() >= 1e4 * 0.99
    assert torch.isfinite(g_loss)
    assert torch.isfinite(d_loss)
    assert torch.isfinite(layer.weight.grad).all()


def test_rlo_loss_grows_for_confidently_wrong_logits():
    wrong = generator_loss(torch.tensor([-1e4]), loss="rlo")
    less_wrong = generator_loss(torch.tensor([-1e3]), loss="rlo")
    assert wrong > less_wrong


def test_r1_penalty_is_squared_input_gradient_norm():
    weight = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    images = torch.randn(4, 2, 3, 3, dtype=torch.float64).requires_grad_(True)
    logits = (images * weight).sum(dim=(1, 2, 3))
    penalty = r1_penalty(images, logits)
    expected = weight.square().sum().float().expand(4)
    assert torch.allclose(penalty, expected, rtol=1e-5)


def test_r1_penalty_gradient_reaches_discriminator_weights():
    weight = torch.randn(1, 2, 3, 3, dtype=torch.float64).requires_grad_(True)
    images = torch.randn(4, 2, 3, 3, dtype=torch.float64).requires_grad_(True)
    logits = (images * weight).sum(dim=(1, 2, 3))
    r1_penalty(images, logits).sum().backward()
    # d/dw of sum over 4 samples of ||w||^2 is 8 w.
    assert torch.allclose(weight.grad, 8 * weight.detach(), rtol=1e-5)
