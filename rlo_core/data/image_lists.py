"""Map-style datasets over decoded tensors or image files, passed through a transform."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from rlo_core.errors import DataError

# Lower-case suffixes of the image files a folder data set reads.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


class TensorImages(Dataset):
    """uint8 image tensors [N, 3, H, W] with labels, passed through a transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), int(self.labels[index])


class FileImages(Dataset):
    """Image files with integer labels, opened with PIL and converted to RGB on access."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], transform: Callable):
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        # Strings pickle faster than Path objects when DataLoader workers start.
        self.paths = [str(path) for path in paths]
        self.labels = list(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image, UnidentifiedImageError

        path = self.paths[index]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, UnidentifiedImageError) as error:
            raise DataError(f"Cannot read image {path}: {error}. Delete or replace the file.") \
                from error
        return self.transform(rgb), self.labels[index]


def list_images(folder: Path) -> list[Path]:
    """Return the image files directly inside `folder`, sorted by name."""
    return sorted(path for path in folder.iterdir()
                  if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file())


def probe_image_size(path: Path) -> int:
    """Return the longer side of one image, in pixels."""
    from PIL import Image

    with Image.open(path) as image:
        return max(image.size)
