"""Perplexity of causal language models, always from plain cross-entropy.

Two protocols, both reported whatever loss a model was trained with:

- Fixed-window (GPTQ/QuIP, used to compare quantized models): windows from
  `rlo_core.lm.windows.evaluation_windows`, each run alone; per window the mean cross-entropy
  of logits[:, :-1] against tokens[:, 1:]; perplexity = exp(mean of the window means).
- Token-level: perplexity = exp(total NLL / number of predicted tokens) over padded batches.
  Labels of -100 and padded positions are excluded, so a sequence's perplexity does not change
  when it is padded or batched with longer ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

IGNORE_INDEX = -100


@dataclass
class PerplexityResult:
    perplexity: float
    mean_nll: float  # nats per predicted token (token-level) or mean of window means
    tokens: int  # predicted tokens
    protocol: str  # "fixed-window" or "token"
    windows: Optional[int] = None
    seqlen: Optional[int] = None


def causal_labels(input_ids, attention_mask=None, labels=None):
    """Labels for next-token prediction: `labels` if given, else the inputs with padding as -100."""
    if labels is not None:
        return labels
    labels = input_ids.clone()
    if attention_mask is not None:
        labels = labels.masked_fill(attention_mask == 0, IGNORE_INDEX)
    return labels


def sum_token_nll(logits, labels, *, ignore_index: int = IGNORE_INDEX,
                  chunk_tokens: int = 8192) -> tuple[Any, int]:
    """Sum of next-token NLL (float64 tensor) and the count of predicted tokens.

    Shifts inside: position t predicts labels[t + 1]. Computes in float32 chunks of
    `chunk_tokens` rows so half-precision logits are never copied to float32 all at once.
    """
    import torch
    import torch.nn.functional as F

    shifted_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    shifted_labels = labels[:, 1:].reshape(-1)
    total = torch.zeros((), dtype=torch.float64, device=logits.device)
    for start in range(0, shifted_labels.numel(), chunk_tokens):
        chunk = shifted_logits[start: start + chunk_tokens]
        if chunk.dtype in (torch.float16, torch.bfloat16):
            chunk = chunk.float()
        total += F.cross_entropy(chunk, shifted_labels[start: start + chunk_tokens],
                                 ignore_index=ignore_index, reduction="sum").double()
    count = int((shifted_labels != ignore_index).sum())
    return total, count


def model_device(model: Any):
    import torch

    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def token_perplexity(model: Any, batches: Iterable[dict[str, Any]], *,
                     progress: Optional[Callable[[int], None]] = None) -> PerplexityResult:
    """exp(total NLL / predicted tokens) over batches of input_ids, attention_mask, labels.

    Missing labels are derived from input_ids with padded positions (attention_mask 0) as -100.
    `progress` is called with the number of batches done.
    """
    import torch

    device = model_device(model)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for done, batch in enumerate(batches, start=1):
                input_ids = batch["input_ids"].to(device)
                mask = batch.get("attention_mask")
                mask = mask.to(device) if mask is not None else None
                labels = causal_labels(input_ids, mask, batch.get("labels"))
                logits = model(input_ids=input_ids, attention_mask=mask).logits
                batch_total, batch_count = sum_token_nll(logits, labels.to(device))
                total += float(batch_total)
                count += batch_count
                if progress is not None:
                    progress(done)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("No predicted tokens: every label is padding or -100.")
    mean = total / count
    return PerplexityResult(math.exp(mean), mean, count, "token")


def window_mean_nlls(model: Any, windows, *, batch_size: int = 1,
                     progress: Optional[Callable[[int], None]] = None) -> list[float]:
    """Mean next-token NLL of each window of `windows` ([N, seqlen]), in order.

    `progress` is called with the number of windows done.
    """
    import torch

    device = model_device(model)
    was_training = model.training
    model.eval()
    window_means: list[float] = []
    try:
        with torch.no_grad():
            for start in range(0, windows.shape[0], batch_size):
                batch = windows[start: start + batch_size].to(device)
                logits = model(input_ids=batch).logits
                for row in range(batch.shape[0]):
                    nll, predicted = sum_token_nll(logits[row: row + 1], batch[row: row + 1])
                    window_means.append(float(nll) / predicted)
                if progress is not None:
                    progress(len(window_means))
    finally:
        model.train(was_training)
    return window_means


def fixed_window_result(mean_nll: float, windows: int, seqlen: int) -> PerplexityResult:
    return PerplexityResult(math.exp(mean_nll), mean_nll, windows * (seqlen - 1), "fixed-window",
                            windows=windows, seqlen=seqlen)


def fixed_window_perplexity(model: Any, windows, *, batch_size: int = 1,
                            progress: Optional[Callable[[int], None]] = None) -> PerplexityResult:
    """Perplexity under the fixed-window protocol for `windows` of shape [N, seqlen].

    Windows have equal length and no padding, so batching them gives the same result as
    running each alone. `progress` is called with the number of windows done.
    """
    means = window_mean_nlls(model, windows, batch_size=batch_size, progress=progress)
    return fixed_window_result(sum(means) / len(means), *windows.shape)
