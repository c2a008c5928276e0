"""Causal-LM loss: causal shift, -100 and padding masks, chunked versus unchunked."""

import pytest
import torch

from rlo_core.errors import NonFiniteLossError
from rlo_core.lm.loss import (CausalLMLoss, build_criterion, causal_lm_loss, objective_and_ce,
                              shift_labels)

LOSSES = ["rlo", "rlo-convex", "ce", "focal"]


def random_batch(dtype=torch.float64, vocab=97, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 11, vocab, generator=generator, dtype=torch.float64).to(dtype)
    labels = torch.randint(0, vocab, (3, 11), generator=generator)
    labels[1, 7:] = -100  # padding at the end of row 1
    labels[2, 0] = -100
    return logits.requires_grad_(True), labels


def loss_and_grad(logits, labels, criterion, chunk_tokens):
    loss = causal_lm_loss(logits, labels, criterion, chunk_tokens=chunk_tokens)
    (grad,) = torch.autograd.grad(loss, logits)
    return loss.detach(), grad


@pytest.mark.parametrize("name", LOSSES)
def test_chunked_loss_equals_unchunked(name):
    criterion = build_criterion(name, k=5, m=5)
    logits, labels = random_batch()
    whole, _ = loss_and_grad(logits, labels, criterion, None)
    chunked, _ = loss_and_grad(logits, labels, criterion, 4)
    assert torch.allclose(whole, chunked, rtol=1e-12, atol=0)  # summation order differs


@pytest.mark.parametrize("name", LOSSES)
def test_chunked_gradient_equals_unchunked(name):
    criterion = build_criterion(name, k=5, m=5)
    logits, labels = random_batch()
    _, whole = loss_and_grad(logits, labels, criterion, None)
    _, chunked = loss_and_grad(logits, labels, criterion, 4)
    assert torch.equal(whole, chunked)


def test_chunked_gradient_equals_unchunked_in_bfloat16():
    criterion = build_criterion("rlo", k=5, m=5)
    logits, labels = random_batch(torch.bfloat16)
    _, whole = loss_and_grad(logits, labels, criterion, None)
    _, chunked = loss_and_grad(logits, labels, criterion, 5)
    assert torch.equal(whole, chunked)


def test_shift_labels_moves_targets_left():
    labels = torch.tensor([[5, 6, 7]])
    assert shift_labels(labels).tolist() == [[6, 7, -100]]


def test_loss_uses_next_token_as_target():
    vocab = 5
    logits = torch.full((1, 3, vocab), -30.0, dtype=torch.float64)
    logits[0, 0, 2] = 30.0  # position 0 predicts token 2 = labels[1]
    logits[0, 1, 4] = 30.0  # position 1 predicts token 4 = labels[2]
    labels = torch.tensor([[0, 2, 4]])
    loss = causal_lm_loss(logits, labels, build_criterion("ce", k=5, m=5))
    assert float(loss) < 1e-12


@pytest.mark.parametrize("name", LOSSES)
def test_ignored_positions_get_no_gradient(name):
    logits, labels = random_batch()
    _, grad = loss_and_grad(logits, labels, build_criterion(name, k=5, m=5), 4)
    # Row 1 has labels -100 from position 7, so positions 6.. predict nothing.
    assert float(grad[1, 6:].abs().max()) == 0.0


@pytest.mark.parametrize("name", LOSSES)
def test_ignored_logits_do_not_change_loss(name):
    criterion = build_criterion(name, k=5, m=5)
    logits, labels = random_batch(vocab=150)
    changed = logits.detach().clone()
    # Class 50 is what a label of -100 would select if used as an index into 150 classes.
    changed[1, 6:, 50] += 40.0
    first = causal_lm_loss(logits.detach(), labels, criterion, chunk_tokens=4)
    second = causal_lm_loss(changed, labels, criterion, chunk_tokens=4)
    assert float(first) == float(second)


def test_num_items_in_batch_divides_the_sum():
    criterion = build_criterion("ce", k=5, m=5)
    logits, labels = random_batch()
    mean = causal_lm_loss(logits.detach(), labels, criterion)
    count = int((shift_labels(labels) != -100).sum())
    scaled = causal_lm_loss(logits.detach(), labels, criterion, num_items_in_batch=2 * count)
    assert torch.allclose(scaled * 2, mean)


def test_nan_loss_raises_non_finite_error():
    logits, labels = random_batch(torch.float32)
    logits = logits.detach().clone()
    logits[0, 0, 0] = float("nan")
    compute = CausalLMLoss(build_criterion("rlo", k=5, m=5))
    with pytest.raises(NonFiniteLossError, match="last checkpoint"):
        compute({"logits": logits}, labels)


def test_evaluation_ce_matches_cross_entropy():
    logits, labels = random_batch()
    objective, ce, count = objective_and_ce(logits.detach(), labels, build_criterion("rlo", k=5, m=5), 4)
    expected = torch.nn.functional.cross_entropy(
        logits.detach().reshape(-1, logits.shape[-1]), shift_labels(labels).reshape(-1),
        ignore_index=-100, reduction="sum")
    assert abs(ce - float(expected)) < 1e-9


def test_evaluation_objective_is_the_training_loss():
    logits, labels = random_batch()
    criterion = build_criterion("rlo", k=5, m=5)
    objective, _, count = objective_and_ce(logits.detach(), labels, criterion, 4)
    assert abs(objective / count - float(causal_lm_loss(logits.detach(), labels, criterion))) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_overwritten_logits_give_equal_head_gradients(dtype):
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 9, 8, generator=generator).to(dtype).requires_grad_(True)
    weight = torch.randn(61, 8, generator=generator).to(dtype).requires_grad_(True)
    labels = torch.randint(0, 61, (2, 9), generator=generator)
    criterion = build_criterion("rlo", k=5, m=5)
    whole = causal_lm_loss(hidden @ weight.T, labels, criterion, chunk_tokens=None)
    expected = torch.autograd.grad(whole, (hidden, weight))
    chunked = causal_lm_loss(hidden @ weight.T, labels, criterion, chunk_tokens=4,
                             overwrite_logits=True)
    for got, want in zip(torch.autograd.grad(chunked, (hidden, weight)), expected):
        assert torch.equal(got, want)


def test_leaf_logits_are_never_overwritten():
    logits, labels = random_batch()
    before = logits.detach().clone()
    causal_lm_loss(logits, labels, build_criterion("rlo", k=5, m=5), chunk_tokens=4,
                   overwrite_logits=True).backward()
    assert torch.equal(logits.detach(), before)


def test_chunked_second_backward_raises():
    logits, labels = random_batch()
    loss = causal_lm_loss(logits, labels, build_criterion("ce", k=5, m=5), chunk_tokens=4)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_chunked_loss_scales_gradient_by_upstream():
    criterion = build_criterion("rlo", k=5, m=5)
    logits, labels = random_batch()
    (plain,) = torch.autograd.grad(causal_lm_loss(logits, labels, criterion, chunk_tokens=4), logits)
    scaled_loss = 1024.0 * causal_lm_loss(logits, labels, criterion, chunk_tokens=4)
    (scaled,) = torch.autograd.grad(scaled_loss, logits)
    assert torch.equal(scaled, 1024.0 * plain)


def test_ce_matches_transformers_model_loss():
    from transformers import AutoModelForCausalLM

    from rlo_core.lm.models import tiny_config

    torch.manual_seed(0)
    config = tiny_config("opt", 50, hidden_size=16, layers=1, heads=2, context=32)
    model = AutoModelForCausalLM.from_config(config)
    input_ids = torch.randint(4, 50, (2, 12))
    mask = torch.ones_like(input_ids)
    mask[1, 8:] = 0
    labels = input_ids.masked_fill(mask == 0, -100)
    outputs = model(input_ids=input_ids, attention_mask=mask, labels=labels)
    ours = causal_lm_loss(outputs.logits, labels, build_criterion("ce", k=5, m=5), chunk_tokens=5)
    assert torch.allclose(ours, outputs.loss, rtol=1e-6)
