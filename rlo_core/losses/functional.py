"""Classification losses written as functions of the per-sample cross-entropy.

Each multi-class loss here is l(CE) for CE = logsumexp(z) - z_y, so its gradient with
respect to the logits is l'(CE) * (softmax(z) - onehot(y)). One fused autograd function
computes log-softmax once, saves it, and reuses it in the backward pass, so the cost stays
close to `F.cross_entropy`. It never forms p_y by softmax-then-pow. Instead p_y^(1/k) is
exp(-CE/k), which is finite for any logit gap and in fp16/bf16 (computed in float32).

Every loss accepts logits of shape (N, C) or (N, C, d1, ...), targets of shape (N,) or
(N, d1, ...), `weight` (per-class, shape (C,)), `ignore_index` and `reduction`, with the
semantics of `torch.nn.functional.cross_entropy`: ignored positions contribute nothing and
`mean` divides by the summed weight of the valid targets.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

Reduction = str  # "none" | "mean" | "sum"

# l(ce) and l'(ce) for each loss; both take and return float32 tensors of shape (N,).
LossOfCE = Callable[[Tensor], Tensor]


def check_positive(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def _flatten(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """Move the class dimension last and flatten: (N, C, d...) -> (N*d..., C)."""
    if logits.dim() < 1:
        raise ValueError("logits must have a class dimension, got a scalar.")
    if logits.dim() == 1:
        return logits.unsqueeze(0), target.reshape(1), ()
    num_classes = logits.shape[1]
    out_shape = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != out_shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits shape "
                         f"{tuple(logits.shape)}; expected {out_shape}.")
    if logits.dim() > 2:
        logits = logits.movedim(1, -1)
    return logits.reshape(-1, num_classes), target.reshape(-1), out_shape


class _LossOfCrossEntropy(torch.autograd.Function):
    """Per-sample loss l(CE) with gradient l'(CE) * (softmax - onehot), log-softmax computed once."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, valid: Tensor, value_fn: LossOfCE,
                slope_fn: LossOfCE) -> Tensor:
        compute_dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
        log_probs = torch.log_softmax(logits.to(compute_dtype), dim=-1)
        ce = -log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
        ce = ce.masked_fill(~valid, 0.0)
        ctx.save_for_backward(log_probs, target, valid, ce)
        ctx.slope_fn = slope_fn
        ctx.input_dtype = logits.dtype
        return value_fn(ce).masked_fill(~valid, 0.0)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        log_probs, target, valid, ce = ctx.saved_tensors
        scale = (ctx.slope_fn(ce) * grad_output.to(ce.dtype)).masked_fill(~valid, 0.0)
        # Out of place: backward may run again on the same graph (retain_graph=True).
        grad = log_probs.exp()
        grad.scatter_add_(1, target.unsqueeze(1), -torch.ones_like(scale).unsqueeze(1))
        grad.mul_(scale.unsqueeze(1))
        return grad.to(ctx.input_dtype), None, None, None, None


def _reduce(per_sample: Tensor, target: Tensor, valid: Tensor, weight: Tensor | None,
            reduction: Reduction, out_shape: tuple[int, ...]) -> Tensor:
    if weight is not None:
        sample_weight = weight.float()[target].masked_fill(~valid, 0.0)
        per_sample = per_sample * sample_weight
    else:
        sample_weight = valid.float()
    if reduction == "none":
        return per_sample.reshape(out_shape)
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.sum() / sample_weight.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")


def loss_of_cross_entropy(logits: Tensor, target: Tensor, value_fn: LossOfCE, slope_fn: LossOfCE,
                          *, weight: Tensor | None = None, ignore_index: int = -100,
                          reduction: Reduction = "mean") -> Tensor:
    """Apply a per-sample loss l(CE) with slope l'(CE), handling shapes, masks and reductions."""
    flat_logits, flat_target, out_shape = _flatten(logits, target)
    valid = flat_target != ignore_index
    # Mask before indexing: an ignore_index of -100 used as an index would pick class C-100.
    safe_target = flat_target.masked_fill(~valid, 0).long()
    per_sample = _LossOfCrossEntropy.apply(flat_logits, safe_target, valid, value_fn, slope_fn)
    return _reduce(per_sample, safe_target, valid, weight, reduction, out_shape)


def rlo_loss(logits: Tensor, target: Tensor, *, k: float = 3.0, m: float = 3.0,
             weight: Tensor | None = None, ignore_index: int = -100,
             reduction: Reduction = "mean") -> Tensor:
    """Rooted logistic objective m * (1 - p_y^(1/k)) = m * (1 - exp(-CE/k)).

    Bounded in [0, m] and not convex. The gradient is the cross-entropy gradient weighted per
    sample by (m/k) * p_y^(1/k), so confidently wrong samples weigh less. With m = k this is
    Generalized Cross Entropy (Zhang and Sabuncu, 2018) with q = 1/k, and it tends to
    cross-entropy as k grows with m = k.
    """
    k, m = check_positive("k", k), check_positive("m", m)
    return loss_of_cross_entropy(
        logits, target,
        lambda ce: m * -torch.expm1(-ce / k),
        lambda ce: (m / k) * torch.exp(-ce / k),
        weight=weight, ignore_index=ignore_index, reduction=reduction)


def rlo_convex_loss(logits: Tensor, target: Tensor, *, k: float = 3.0,
                    weight: Tensor | None = None, ignore_index: int = -100,
                    reduction: Reduction = "mean") -> Tensor:
    """Convex rooted loss k * (p_y^(-1/k) - 1) = k * (exp(CE/k) - 1).

    The binary rooted logistic exponent carried to many classes: unbounded, convex in the
    logits, at least CE, and tending to CE as k grows. It overflows to inf in float32 once
    CE exceeds about 88 * k, which only a diverged model reaches.
    """
    k = check_positive("k", k)
    return loss_of_cross_entropy(
        logits, target,
        lambda ce: k * torch.expm1(ce / k),
        lambda ce: torch.exp(ce / k),
        weight=weight, ignore_index=ignore_index, reduction=reduction)


def focal_loss(logits: Tensor, target: Tensor, *, alpha: float = 0.25, gamma: float = 3.0,
               weight: Tensor | None = None, ignore_index: int = -100,
               reduction: Reduction = "mean") -> Tensor:
    """Multi-class focal loss alpha * (1 - p_y)^gamma * CE (Lin et al., 2017)."""
    alpha = check_positive("alpha", alpha)
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}.")

    def value(ce: Tensor) -> Tensor:
        return alpha * (-torch.expm1(-ce)).pow(gamma) * ce

    def slope(ce: Tensor) -> Tensor:
        p = torch.exp(-ce)
        one_minus_p = -torch.expm1(-ce)
        # d/dce [(1-p)^g * ce] with dp/dce = -p; (1-p)^(g-1) is guarded for g < 1 at p = 1.
        lower = one_minus_p.clamp_min(torch.finfo(ce.dtype).tiny).pow(gamma - 1) if gamma else 0.0
        return alpha * (one_minus_p.pow(gamma) + gamma * lower * p * ce)

    return loss_of_cross_entropy(logits, target, value, slope, weight=weight,
                                 ignore_index=ignore_index, reduction=reduction)


def cross_entropy_loss(logits: Tensor, target: Tensor, *, weight: Tensor | None = None,
                       ignore_index: int = -100, reduction: Reduction = "mean") -> Tensor:
    """Plain cross-entropy through `torch.nn.functional.cross_entropy`."""
    return torch.nn.functional.cross_entropy(
        logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits,
        target, weight=weight, ignore_index=ignore_index, reduction=reduction)


# Beyond this exponent the binary rooted loss continues linearly in the exponent, so values
# and gradients stay finite in float32 (exp(40) ~ 2.4e17) for any logit.
BINARY_MAX_EXPONENT = 40.0


def binary_rooted_logistic(logits: Tensor, sign: Tensor | float, *, k: float = 2.0,
                           reduction: Reduction = "mean",
                           max_exponent: float = BINARY_MAX_EXPONENT) -> Tensor:
    """Binary rooted logistic loss k * (1 + exp(-s*t))^(1/k) = k * exp(softplus(-s*t) / k).

    `sign` is +1 for the positive label and -1 for the negative one (a tensor or a number).
    Strictly convex in t; minus k it tends to the logistic loss softplus(-s*t) as k grows.
    For an exponent u = softplus(-s*t)/k above `max_exponent` the loss continues as
    k * exp(u0) * (1 + u - u0), the tangent in u, which keeps it convex, increasing and finite
    (for k = 2 this affects only margins below about -80). Computed in float32, or
    float64 for float64 input.
    """
    k = check_positive("k", k)
    compute_dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    margin = logits.to(compute_dtype) * sign
    exponent = torch.nn.functional.softplus(-margin) / k
    capped = exponent.clamp(max=max_exponent)
    loss = k * torch.exp(capped) * (1.0 + (exponent - capped))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")
