"""Train and test transforms for image tensors and PIL images."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

# Data sets whose images are this size or less (CIFAR, Tiny-ImageNet) are augmented with a
# padded random crop; larger ones with a random-resized crop.
SMALL_IMAGE_MAX = 64
# Test images of large data sets are resized to image_size / 0.875 and center-cropped, the
# usual ImageNet evaluation (256 then 224).
CENTER_CROP_FRACTION = 0.875


def classification_transforms(*, image_size: int, native_size: int, mean, std, aug: bool = True,
                              train: bool, randaugment: bool = True,
                              uniform: bool = True) -> v2.Compose:
    """Build the reference augmentation, or the deterministic test transform.

    Train, images of 64 px or less: random crop with padding 4 and a horizontal flip.
    Train, larger images: random-resized crop and a horizontal flip. RandAugment (N=2, M=14)
    follows unless `randaugment` is off; `aug` off drops every random step.
    Test: a resize and a center crop to `image_size`. `uniform` means every image has the
    square `native_size`, so no resize is needed at that size.
    """
    small = native_size <= SMALL_IMAGE_MAX
    needs_resize = image_size != native_size or not uniform
    steps: list = [v2.ToImage()]
    if train and aug:
        if small:
            if needs_resize:
                steps += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
            steps += [v2.RandomCrop(image_size, padding=4), v2.RandomHorizontalFlip()]
        else:
            steps += [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()]
        if randaugment:
            steps += [v2.RandAugment(num_ops=2, magnitude=14)]
    elif small:
        if needs_resize:
            steps += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    else:
        resize = round(image_size / CENTER_CROP_FRACTION)
        steps += [v2.Resize(resize, antialias=True), v2.CenterCrop(image_size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)


def transform_pair(options, *, native_size: int, image_size: int, mean, std,
                   uniform: bool = True) -> tuple[v2.Compose, v2.Compose]:
    """Return (train, test) transforms for `DataOptions`: `--no-aug` turns RandAugment off and
    keeps the crop and flip, as the reference's flag does."""
    common = dict(image_size=image_size, native_size=native_size, mean=mean, std=std,
                  uniform=uniform)
    train = classification_transforms(train=True, randaugment=options.aug, **common)
    test = classification_transforms(train=False, **common)
    return train, test
