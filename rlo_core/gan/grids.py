"""Image grids saved as PNG, like StyleGAN2-ADA's reals.png and fakesNNNNNN.png."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from torch import Tensor

from rlo_core import atomic
from rlo_core.gan.data import to_uint8


def grid_image(images: Tensor, columns: int | None = None, padding: int = 1) -> Tensor:
    """Tile float images [N, C, H, W] in [-1, 1] (or uint8) into one uint8 image [C, H', W'].

    Images fill rows left to right; a 1-pixel dark border separates them.
    """
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    count, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = torch.zeros(channels, rows * (height + padding) + padding,
                       columns * (width + padding) + padding, dtype=torch.uint8)
    for index in range(count):
        row, column = divmod(index, columns)
        top = padding + row * (height + padding)
        left = padding + column * (width + padding)
        grid[:, top:top + height, left:left + width] = images[index].cpu()
    return grid


def save_grid(images: Tensor, path: Path, columns: int | None = None,
              scale: int = 1) -> Path:
    """Write a PNG grid of `images` atomically; `scale` enlarges it by pixel repetition."""
    from PIL import Image

    grid = grid_image(images, columns)
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    array = grid.permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    atomic.write_bytes(Path(path), buffer.getvalue())
    return Path(path)
