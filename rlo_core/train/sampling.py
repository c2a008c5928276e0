"""Deterministic, resumable sampling.

Every epoch's order comes from (seed, epoch), and every sample's augmentation randomness from
(seed, epoch, index). A run interrupted at any step and resumed therefore gets exactly the
same batches and augmentations as an uninterrupted one, whatever the number of workers.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Dataset, Sampler

_MIX = 0x9E3779B97F4A7C15  # 64-bit golden-ratio constant, spreads nearby seeds apart
_MASK = (1 << 63) - 1


def derive_seed(*parts: int) -> int:
    value = 0
    for part in parts:
        value = ((value ^ (part & _MASK)) * _MIX + 0x632BE59BD9B4E019) & _MASK
    return value


def seed_torch(seed: int, device: torch.device | None = None) -> None:
    """Seed torch's CPU generator, and the current CUDA device's when `device` is CUDA.

    Used per sample and per step in place of `torch.manual_seed`. While CUDA is
    uninitialized, that call also queues a lazy seeding of every CUDA device and records a
    stack trace for it, about 80 us per call with torch 2.14.1 on the development machine.
    """
    torch.random.default_generator.manual_seed(seed)
    if device is not None and device.type == "cuda":
        torch.cuda.manual_seed(seed)


class ResumableSampler(Sampler):
    """Shuffled (or sequential) indices per epoch, sharded over `world_size` ranks, starting at
    `start` samples into this rank's shard. Yields (index, sample_seed) pairs for
    `SeededDataset`. Call `set_epoch(epoch, start)` before each epoch."""

    def __init__(self, length: int, *, shuffle: bool, seed: int, rank: int = 0,
                 world_size: int = 1):
        self.length, self.shuffle, self.seed = length, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0
        # Pad to a multiple of world_size, as DistributedSampler does, so ranks stay in step.
        self.per_rank = math.ceil(length / world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = list(range(self.length))
        total = self.per_rank * self.world_size
        order += order[: total - len(order)]
        return order[self.rank:total:self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.indices()[self.start:]:
            yield index, derive_seed(self.seed, self.epoch, index, 1)

    def __len__(self) -> int:
        return self.per_rank - self.start


class SeededDataset(Dataset):
    """Wrap a dataset so each item's random transforms are seeded by its sample seed."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]):
        index, sample_seed = item
        seed_torch(sample_seed)
        return self.dataset[index]
