"""Causal-LM loss for any loss of `rlo_core.losses`, computed in chunks of tokens.

Position t predicts labels[t + 1]: the labels are shifted (the last position gets -100), not
the logits, so the [tokens x vocab] logits are never copied. Labels of -100, including
padding, contribute nothing.

The unchunked losses save a float32 log-softmax of every token for the backward pass: a
second [tokens x vocab] float32 tensor next to the logits (about 1.6 GB for 8 x 1024 tokens
at OPT's vocabulary of 50,272). `ChunkedLoss` keeps only the logits. Its forward pass
evaluates the loss `chunk_tokens` rows at a time without a graph, and its backward pass runs
the same loss again on each chunk with autograd, writing that chunk's gradient into one
gradient tensor. Every row goes through the same code as in the unchunked loss, so the
gradients equal the unchunked ones up to float rounding.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_INDEX = -100
DEFAULT_CHUNK_TOKENS = 2048


def at_least_float32(tensor: Tensor) -> Tensor:
    """Upcast float16 and bfloat16 to float32; keep float32 and float64 as they are."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def shift_labels(labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Labels aligned with the logits: position t gets labels[t + 1], the last gets ignore_index."""
    return F.pad(labels[..., 1:], (0, 1), value=ignore_index)


class ChunkedLoss(torch.autograd.Function):
    """Sum of `criterion(logits, targets)` over rows, computed `chunk_tokens` rows at a time.

    `criterion` must use reduction="sum", so chunk sums add up to the full sum.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor, criterion: nn.Module, chunk_tokens: int) -> Tensor:
        dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
        total = torch.zeros((), dtype=dtype, device=logits.device)
        with torch.no_grad():
            for start in range(0, logits.shape[0], chunk_tokens):
                stop = start + chunk_tokens
                total += criterion(logits[start:stop], targets[start:stop]).to(dtype)
        ctx.save_for_backward(logits, targets)
        ctx.criterion = criterion
        ctx.chunk_tokens = chunk_tokens
        return total

    @staticmethod
    def backward(ctx, grad_total: Tensor):
        logits, targets = ctx.saved_tensors
        grad = torch.empty_like(logits)
        for start in range(0, logits.shape[0], ctx.chunk_tokens):
            stop = start + ctx.chunk_tokens
            with torch.enable_grad():
                piece = logits[start:stop].detach().requires_grad_(True)
                value = ctx.criterion(piece, targets[start:stop])
                (piece_grad,) = torch.autograd.grad(value, piece, grad_outputs=grad_total.to(value.dtype))
            grad[start:stop] = piece_grad
        return grad, None, None, None


def summed_loss(logits: Tensor, targets: Tensor, criterion: nn.Module,
                chunk_tokens: Optional[int]) -> Tensor:
    """Sum of the loss over rows of logits [N, V]; chunked when `chunk_tokens` < N."""
    if chunk_tokens is None or chunk_tokens <= 0 or chunk_tokens >= logits.shape[0]:
        value = criterion(logits, targets)
        return value if value.dtype == torch.float64 else value.float()
    return ChunkedLoss.apply(logits, targets, criterion, int(chunk_tokens))


def causal_lm_loss(logits: Tensor, labels: Tensor, criterion: nn.Module, *,
                   chunk_tokens: Optional[int] = DEFAULT_CHUNK_TOKENS,
                   num_items_in_batch: Any = None) -> Tensor:
    """Mean next-token loss of logits [B, T, V] against labels [B, T].

    `criterion` is a loss module of `rlo_core.losses` built with reduction="sum" and
    ignore_index -100. The sum is divided by `num_items_in_batch` when given (the Trainer's
    count of predicted tokens over all gradient-accumulation micro-batches), else by the
    predicted tokens of this batch.
    """
    targets = shift_labels(labels).reshape(-1)
    flat = logits.reshape(-1, logits.shape[-1])  # a view: logits from a model are contiguous
    total = summed_loss(flat, targets, criterion, chunk_tokens)
    if num_items_in_batch is None:
        count = (targets != IGNORE_INDEX).sum().clamp_min(1)
    else:
        count = num_items_in_batch
    if torch.is_tensor(count):
        count = count.to(total.device)
    return total / count


def build_criterion(loss: str, *, k: float, m: float, focal_alpha: float = 0.25,
                    focal_gamma: float = 3.0) -> nn.Module:
    """A loss module by name (rlo, rlo-convex, ce, focal) summing over tokens, ignoring -100."""
    from rlo_core.losses import build_loss

    return build_loss(loss, k=k, m=m, alpha=focal_alpha, gamma=focal_gamma,
                      ignore_index=IGNORE_INDEX, reduction="sum")


class CausalLMLoss:
    """The Trainer's `compute_loss_func`: (outputs, labels, num_items_in_batch) -> loss.

    Raises NonFiniteLossError on a NaN or infinite loss, because the Trainer would otherwise
    keep stepping and its logging would hide the NaN.
    """

    def __init__(self, criterion: nn.Module, chunk_tokens: Optional[int] = DEFAULT_CHUNK_TOKENS):
        self.criterion = criterion
        self.chunk_tokens = chunk_tokens

    def __call__(self, outputs: Any, labels: Tensor, num_items_in_batch: Any = None) -> Tensor:
        from rlo_core.errors import NonFiniteLossError

        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        loss = causal_lm_loss(logits, labels, self.criterion, chunk_tokens=self.chunk_tokens,
                              num_items_in_batch=num_items_in_batch)
        if not bool(torch.isfinite(loss)):
            raise NonFiniteLossError(
                f"The training loss became {float(loss)} ({type(self.criterion).__name__}). "
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
