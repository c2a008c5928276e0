"""Evaluation split across the ranks of a distributed finetuning job.

Each rank takes every world_size-th item and the ranks add their sums together, so perplexity
is computed once over the whole split instead of once per rank. Every rank runs the same
number of forward passes, which FSDP needs (its forward gathers weights from all ranks): a
rank with one item fewer runs a padding item whose labels are all -100, so it adds nothing.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from rlo_core.lm.perplexity import IGNORE_INDEX


def rank_and_world() -> tuple[int, int]:
    """Return (rank, world size) of the default process group, or (0, 1) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard_indices(length: int, rank: int, world: int) -> tuple[list[int], int]:
    """Return this rank's item indices and how many padding items it adds to match the
    others."""
    indices = list(range(rank, length, world))
    per_rank = -(-length // world)
    return indices, per_rank - len(indices)


class ShardedBlocks(torch.utils.data.Dataset):
    """This rank's blocks of a token-block dataset, padded with fully ignored blocks."""

    def __init__(self, dataset: Any, rank: int, world: int):
        self.dataset = dataset
        self.indices, self.padding = shard_indices(len(dataset), rank, world)

    def __len__(self) -> int:
        return len(self.indices) + self.padding

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < len(self.indices):
            return self.dataset[self.indices[index]]
        item = dict(self.dataset[0])
        item["labels"] = torch.full_like(item["input_ids"], IGNORE_INDEX)
        return item


def shard_windows(windows: torch.Tensor, rank: int, world: int) -> tuple[torch.Tensor, int]:
    """Return this rank's evaluation windows, padded by repeating the first, and the count of
    real ones."""
    indices, padding = shard_indices(windows.shape[0], rank, world)
    return windows[indices + [0] * padding], len(indices)


def all_reduce_sums(values: Sequence[float], device: Any) -> list[float]:
    """Sum `values` over all ranks in float64 (unchanged without a process group)."""
    if rank_and_world()[1] == 1:
        return list(values)
    totals = torch.tensor(list(values), dtype=torch.float64, device=device)
    torch.distributed.all_reduce(totals)
    return totals.tolist()


def sharded_fixed_window_perplexity(model: Any, windows: torch.Tensor, *,
                                    batch_size: int = 1) -> Any:
    """Compute the fixed-window perplexity of all `windows`, each rank evaluating its share."""
    from rlo_core.lm.perplexity import fixed_window_result, model_device, window_mean_nlls

    rank, world = rank_and_world()
    shard, real = shard_windows(windows, rank, world)
    means = window_mean_nlls(model, shard, batch_size=batch_size)[:real]
    total, count = all_reduce_sums([sum(means), len(means)], model_device(model))
    return fixed_window_result(total / count, int(count), windows.shape[1])
