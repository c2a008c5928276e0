"""Token windows for the fixed-window perplexity protocol and for quantization calibration.

The protocol follows the GPTQ and QuIP evaluation code: tokenize the evaluation text once
(so BOS appears only at position 0), cut it into N = tokens // seqlen non-overlapping windows
and drop the tail. The c4 `old` variant instead crops 256 random validation documents of at
least seqlen tokens, with Python's `random` seeded 0, in the order GPTQ draws them.
"""

from __future__ import annotations

import random
from typing import Any

from rlo_core.errors import DataError
from rlo_core.lm.text_data import TextSplits


def tokenize_text(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` with the tokenizer's special tokens (BOS for OPT and Llama)."""
    import transformers

    # A long text exceeds model_max_length on purpose; silence that warning for this call.
    logger = transformers.logging.get_logger("transformers.tokenization_utils_base")
    level = logger.level
    logger.setLevel(transformers.logging.ERROR)
    try:
        return list(tokenizer(text, add_special_tokens=True)["input_ids"])
    finally:
        logger.setLevel(level)


def fixed_windows(token_ids: list[int], seqlen: int, max_windows: int | None = None):
    """Cut token ids into a LongTensor [N, seqlen] of non-overlapping windows, tail dropped."""
    import torch

    if seqlen < 2:
        raise DataError(f"Sequence length must be at least 2 tokens, got {seqlen}.")
    count = len(token_ids) // seqlen
    if max_windows is not None:
        count = min(count, max_windows)
    if count == 0:
        raise DataError(f"The evaluation text has {len(token_ids)} tokens, fewer than one window "
                        f"of {seqlen}. Use a shorter sequence length or a larger split.")
    return torch.tensor(token_ids[: count * seqlen], dtype=torch.long).view(count, seqlen)


def random_document_windows(documents: list[str], tokenizer: Any, seqlen: int, count: int,
                            seed: int = 0, *, min_tokens: int | None = None):
    """Crop `count` random documents with at least `min_tokens` (default seqlen) tokens each.

    Draws as GPTQ's C4 loaders do: a random document index until one is long enough, then a
    random start in [0, length - seqlen - 1]. Raises DataError when no document is long enough.
    """
    import torch

    if not documents:
        raise DataError("No documents to draw windows from.")
    min_tokens = seqlen if min_tokens is None else min_tokens
    rng = random.Random(seed)
    cache: dict[int, list[int]] = {}
    windows = []
    for _ in range(count):
        while True:
            index = rng.randint(0, len(documents) - 1)
            if index not in cache:
                cache[index] = tokenize_text(tokenizer, documents[index])
            if len(cache[index]) >= min_tokens:
                break
            if len(cache) == len(documents) and all(len(ids) < min_tokens for ids in cache.values()):
                raise DataError(f"No document has {min_tokens} tokens or more, so no window of "
                                f"{seqlen} tokens can be cropped. Use a shorter sequence length.")
        ids = cache[index]
        # GPTQ draws randint(0, length - seqlen - 1); at length == seqlen that range is empty.
        start = rng.randint(0, len(ids) - seqlen - 1) if len(ids) > seqlen else 0
        windows.append(ids[start: start + seqlen])
    return torch.tensor(windows, dtype=torch.long)


def evaluation_windows(splits: TextSplits, tokenizer: Any, seqlen: int):
    """Windows [N, seqlen] of the evaluation split under the data set's loader variant."""
    if splits.eval_random_documents:
        return random_document_windows(splits.evaluation_rows(), tokenizer, seqlen,
                                       splits.eval_max_windows or 256, seed=0)
    return fixed_windows(tokenize_text(tokenizer, splits.evaluation_text()), seqlen,
                         splits.eval_max_windows)


def calibration_windows(splits: TextSplits, tokenizer: Any, seqlen: int, count: int = 128,
                        seed: int = 0):
    """`count` random windows [count, seqlen] of the train split, seeded as in GPTQ.

    C4 crops random documents longer than seqlen; the other data sets join the train rows
    with `splits.train_separator`, tokenize once and draw random starts.
    """
    import torch

    if not splits.train:
        raise DataError(f"{splits.name} ({splits.variant}) has no train split to calibrate on. "
                        "For C4, add the c4-train.00000-of-01024.json.gz shard.")
    if splits.name == "c4":
        return random_document_windows(splits.train, tokenizer, seqlen, count, seed,
                                       min_tokens=seqlen + 1)
    ids = tokenize_text(tokenizer, splits.text("train", splits.train_separator))
    if len(ids) <= seqlen + 1:
        raise DataError(f"The train split has {len(ids)} tokens, too few for calibration "
                        f"windows of {seqlen}. Use a shorter sequence length.")
    rng = random.Random(seed)
    starts = [rng.randint(0, len(ids) - seqlen - 1) for _ in range(count)]
    return torch.tensor([ids[s: s + seqlen] for s in starts], dtype=torch.long)
