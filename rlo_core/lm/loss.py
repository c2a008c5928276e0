"""Causal-LM loss for any loss of `rlo_core.losses`, computed in chunks of tokens.

Position t predicts labels[t + 1]: the labels are shifted (the last position gets -100), not
the logits, so the [tokens x vocab] logits are never copied. Labels of -100, including
padding, contribute nothing.

The unchunked losses save a float32 log-softmax of every token for the backward pass. That is
a second [tokens x vocab] float32 tensor next to the logits: about 1.6 GB for 8 x 1024 tokens
at OPT's vocabulary of 50,272, and twice the size of float16 or bfloat16 logits.
`ChunkedLoss` instead computes the gradient during the forward pass, `chunk_tokens` rows at a
time, by running the same loss with autograd on each chunk. The gradient goes into a buffer of
the logits' dtype, or into the logits themselves with `overwrite_logits=True`, so besides the
logits only a few chunk-sized float32 tensors exist. Every row goes through the same code as
in the unchunked loss with the same upstream gradient, so the gradients are equal.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_INDEX = -100
DEFAULT_CHUNK_TOKENS = 512


def at_least_float32(tensor: Tensor) -> Tensor:
    """Upcast float16 and bfloat16 to float32; keep float32 and float64 as they are."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def shift_labels(labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Align labels with the logits: position t gets labels[t + 1], the last gets ignore_index."""
    return F.pad(labels[..., 1:], (0, 1), value=ignore_index)


class ChunkedLoss(torch.autograd.Function):
    """Sum of `criterion(logits, targets)` over rows divided by `divisor`, in chunks of rows.

    `criterion` must use reduction="sum", so chunk sums add up to the full sum. The gradient
    of the result is computed in the forward pass for an upstream gradient of 1 and scaled
    in the backward pass, so backward can run only once (no retain_graph).
    """

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor, criterion: nn.Module, chunk_tokens: int,
                divisor: float, overwrite_logits: bool) -> Tensor:
        dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
        total = torch.zeros((), dtype=dtype, device=logits.device)
        needs_grad = ctx.needs_input_grad[0]
        grad = None
        if needs_grad:
            grad = logits if overwrite_logits else torch.empty_like(logits)
        for start in range(0, logits.shape[0], chunk_tokens):
            stop = start + chunk_tokens
            piece, piece_targets = logits[start:stop], targets[start:stop]
            if not needs_grad:
                total += criterion(piece, piece_targets).to(dtype)
                continue
            with torch.enable_grad():
                leaf = piece.detach().requires_grad_(True)
                value = criterion(leaf, piece_targets)
                # The upstream gradient of this chunk's sum is 1 / divisor, as in one piece.
                upstream = torch.full_like(value, 1.0 / divisor)
                (piece_grad,) = torch.autograd.grad(value, leaf, grad_outputs=upstream)
            total += value.detach().to(dtype)
            grad[start:stop] = piece_grad
            # Free this chunk's tensors before the next chunk allocates its own.
            del leaf, value, piece_grad
        ctx.grad = grad
        return total / divisor

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        grad = ctx.grad
        if grad is None:
            raise RuntimeError("ChunkedLoss computes its gradient once, in the forward pass; "
                               "backward through it a second time (retain_graph=True) is not "
                               "supported. Use chunk_tokens=None for that.")
        ctx.grad = None
        # The Trainer passes exactly 1; an AMP loss scale is a power of two, so scaling is exact.
        if not bool(grad_output == 1):
            grad = grad.mul_(grad_output.to(grad.dtype))
        return grad, None, None, None, None, None


def causal_lm_loss(logits: Tensor, labels: Tensor, criterion: nn.Module, *,
                   chunk_tokens: Optional[int] = DEFAULT_CHUNK_TOKENS,
                   num_items_in_batch: Any = None, overwrite_logits: bool = False) -> Tensor:
    """Mean next-token loss of logits [B, T, V] against labels [B, T].

    `criterion` is a loss module of `rlo_core.losses` built with reduction="sum" and
    ignore_index -100. The sum is divided by `num_items_in_batch` when given (the Trainer's
    count of predicted tokens over all gradient-accumulation micro-batches), else by the
    predicted tokens of this batch.

    With chunking and `overwrite_logits=True`, logits that require grad and are not a leaf
    are overwritten with their gradient during this call, which saves one [tokens x vocab]
    buffer. Pass it only when nothing reads the logits later.
    """
    targets = shift_labels(labels).reshape(-1)
    flat = logits.reshape(-1, logits.shape[-1])  # a view: logits from a model are contiguous
    if num_items_in_batch is None:
        divisor = float((targets != IGNORE_INDEX).sum().clamp_min(1))
    else:
        divisor = max(float(num_items_in_batch), 1.0)  # an all-padding batch sums to 0
    if chunk_tokens is None or chunk_tokens <= 0 or chunk_tokens >= flat.shape[0]:
        value = criterion(flat, targets)
        value = value if value.dtype == torch.float64 else value.float()
        return value / divisor
    overwrite = overwrite_logits and logits.grad_fn is not None  # never a caller's leaf tensor
    return ChunkedLoss.apply(flat, targets, criterion, int(chunk_tokens), divisor, overwrite)


def build_criterion(loss: str, *, k: float, m: float, focal_alpha: float = 0.25,
                    focal_gamma: float = 3.0) -> nn.Module:
    """Build a loss module by name (rlo, rlo-convex, ce, focal) that sums over tokens and ignores -100."""
    from rlo_core.losses import build_loss

    return build_loss(loss, k=k, m=m, alpha=focal_alpha, gamma=focal_gamma,
                      ignore_index=IGNORE_INDEX, reduction="sum")


class CausalLMLoss:
    """Loss hook for the Trainer's `compute_loss_func`: (outputs, labels, num_items_in_batch) -> loss.

    Raises NonFiniteLossError on a NaN or infinite loss, because the Trainer would otherwise
    keep stepping and its logging would hide the NaN.
    """

    def __init__(self, criterion: nn.Module, chunk_tokens: Optional[int] = DEFAULT_CHUNK_TOKENS):
        self.criterion = criterion
        self.chunk_tokens = chunk_tokens

    def __call__(self, outputs: Any, labels: Tensor, num_items_in_batch: Any = None) -> Tensor:
        from rlo_core.errors import NonFiniteLossError

        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        # The Trainer drops the model outputs after this call, so the logits may hold the gradient.
        loss = causal_lm_loss(logits, labels, self.criterion, chunk_tokens=self.chunk_tokens,
                              num_items_in_batch=num_items_in_batch, overwrite_logits=True)
        if not bool(torch.isfinite(loss.detach())):
            raise NonFiniteLossError(
                f"The training loss became {float(loss.detach())} ({type(self.criterion).__name__}). "
                "Training stopped; the last checkpoint saved before this step is kept. "
                "Lower --lr, raise --warmup-steps, or use --precision fp32 or bf16 instead "
                "of fp16.")
        return loss


def objective_and_ce(logits: Tensor, labels: Tensor, criterion: nn.Module,
                     chunk_tokens: int = DEFAULT_CHUNK_TOKENS) -> tuple[float, float, int]:
    """Sums of the training objective and of cross-entropy over predicted tokens, and their count.

    Both come from the same logits, so perplexity exp(ce / count) stays plain cross-entropy
    whatever loss was trained.
    """
    targets = shift_labels(labels).reshape(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    objective = 0.0
    ce = 0.0
    with torch.no_grad():
        for start in range(0, flat.shape[0], chunk_tokens):
            piece = flat[start: start + chunk_tokens]
            piece_targets = targets[start: start + chunk_tokens]
            objective += float(criterion(piece, piece_targets))
            ce += float(F.cross_entropy(at_least_float32(piece), piece_targets,
                                        ignore_index=IGNORE_INDEX, reduction="sum"))
    return objective, ce, int((targets != IGNORE_INDEX).sum())
