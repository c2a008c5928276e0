"""Causal-LM training data: tokenize rows, concatenate them and cut equal blocks.

This is the standard recipe of the transformers `run_clm` example. Each row is tokenized with
the tokenizer's special tokens, so OPT and Llama tokenizers put BOS at the start of every row.
The ids of a split are concatenated, and the concatenation is cut into blocks of `block_size`
tokens with the tail dropped. Splits never mix.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rlo_core.errors import DataError

log = logging.getLogger(__name__)

TOKENIZE_BATCH_ROWS = 1000


def tokenize_rows(tokenizer: Any, rows: list[str]) -> np.ndarray:
    """Concatenated token ids of all rows, as int64."""
    import transformers

    pieces: list[np.ndarray] = []
    logger = transformers.logging.get_logger("transformers.tokenization_utils_base")
    level = logger.level
    logger.setLevel(transformers.logging.ERROR)  # rows longer than the context are cut later
    try:
        for start in range(0, len(rows), TOKENIZE_BATCH_ROWS):
            encoded = tokenizer(rows[start: start + TOKENIZE_BATCH_ROWS], add_special_tokens=True)
            pieces.extend(np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"])
    finally:
        logger.setLevel(level)
    if not pieces:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(pieces)


class TokenBlocks(Dataset):
    """Blocks [N, block_size] of token ids; items are dicts the Trainer's collator stacks."""

    def __init__(self, blocks: torch.Tensor):
        self.blocks = blocks

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = self.blocks[index]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}

    @property
    def tokens(self) -> int:
        return int(self.blocks.numel())


def build_blocks(tokenizer: Any, rows: list[str], block_size: int, *, split: str,
                 max_blocks: int | None = None) -> TokenBlocks:
    """Tokenize `rows`, concatenate and cut into blocks; raises DataError if no block fits."""
    ids = tokenize_rows(tokenizer, rows)
    count = len(ids) // block_size
    if max_blocks is not None:
        count = min(count, max_blocks)
    if count == 0:
        raise DataError(f"The {split} split has {len(ids)} tokens, fewer than one block of "
                        f"{block_size}. Use a smaller --block-size or more text.")
    blocks = torch.from_numpy(ids[: count * block_size].copy()).view(count, block_size)
    log.info("%s: %d tokens in %d blocks of %d (%d tokens of tail dropped).", split, len(ids),
             count, block_size, len(ids) - count * block_size)
    return TokenBlocks(blocks)


def pad_batch(sequences: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad token id lists into input_ids, attention_mask and labels (-100 on padding)."""
    if not sequences:
        raise DataError("No sequences to pad.")
    width = max(len(seq) for seq in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
