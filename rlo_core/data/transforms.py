"""Train and test transforms for image tensors and PIL images."""

from __future__ import annotations

import torch
from torchvision.transforms import v2


def classification_transforms(*, image_size: int, native_size: int, mean, std, aug: bool,
                              train: bool, randaugment: bool = True) -> v2.Compose:
    """Reference augmentation: for images of 64 px or less, random crop with padding 4 and a
    horizontal flip; for larger ones a random-resized crop and flip; RandAugment (N=2, M=14)
    on top unless `randaugment` is off. Test transforms are deterministic resizes."""
    steps: list = [v2.ToImage()]
    if train and aug:
        if native_size <= 64:
            steps += [v2.Resize(image_size, antialias=True)] if image_size != native_size else []
            steps += [v2.RandomCrop(image_size, padding=4), v2.RandomHorizontalFlip()]
        else:
            steps += [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()]
        if randaugment:
            steps += [v2.RandAugment(num_ops=2, magnitude=14)]
    else:
        if native_size <= 64 or image_size != native_size:
            steps += [v2.Resize(image_size, antialias=True)]
        if native_size > 64:
            steps += [v2.CenterCrop(image_size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)
