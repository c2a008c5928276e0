"""Training images for `rlo gan`, held in memory as uint8 tensors [N, C, R, R].

`digits` is scikit-learn's 1,797 handwritten digits (8x8, grey-scale), all of them, resized to
the requested resolution with antialiased bilinear interpolation. `imagefolder:PATH` reads
every image under PATH (recursively), center-crops it to a square and resizes it with Lanczos
filtering. When PATH has two or more subfolders with images, the subfolder names are class
labels, which only the feature-space FID classifier uses.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from rlo_core.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}
# Share of the available memory the decoded images may take before loading is rejected.
MAX_MEMORY_FRACTION = 0.5


@dataclass
class GanData:
    name: str
    images: Tensor  # uint8 [N, C, R, R]
    labels: Optional[Tensor] = None  # int64 [N], or None for an unlabeled folder
    class_names: list[str] = field(default_factory=list)

    @property
    def img_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])


def to_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] to float32 [-1, 1]."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] (clipped) to uint8 [0, 255]."""
    return ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def load_gan_data(dataset: str, resolution: int, *, max_images: int | None = None,
                  workers: int = 0) -> GanData:
    """Load `digits` or `imagefolder:PATH` at `resolution` pixels."""
    key, _, argument = dataset.partition(":")
    key = key.strip().lower()
    if key == "digits":
        data = load_digits(resolution)
    elif key == "imagefolder":
        if not argument:
            raise DataError("--dataset imagefolder needs a folder: pass imagefolder:PATH, for "
                            "example imagefolder:/data/ffhq.")
        data = load_image_folder(Path(argument).expanduser(), resolution, max_images=max_images,
                                 workers=workers)
    else:
        raise DataError(f"Unknown GAN data set '{dataset}'. Use digits (offline, scikit-learn's "
                        "handwritten digits) or imagefolder:PATH (a folder of images).")
    if max_images is not None and len(data) > max_images:
        data = GanData(data.name, data.images[:max_images],
                       None if data.labels is None else data.labels[:max_images], data.class_names)
    return data


def load_digits(resolution: int) -> GanData:
    from torchvision.transforms import v2

    from rlo_core.data.digits import load_digits_tensors

    train_x, train_y, test_x, test_y = load_digits_tensors()
    images = torch.cat([train_x, test_x])[:, :1]  # the three channels are identical
    labels = torch.cat([train_y, test_y])
    resize = v2.Resize(resolution, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
    resized = resize(images.float()).round().clamp(0, 255).to(torch.uint8)
    return GanData("digits", resized, labels, [str(i) for i in range(10)])


def _list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                  and p.is_file() and not any(part.startswith(".") for part in p.parts))


class _FolderImages(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], resolution: int):
        self.paths, self.resolution = paths, resolution

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        import numpy as np
        from PIL import Image, UnidentifiedImageError

        path = self.paths[index]
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except (OSError, UnidentifiedImageError) as error:
            raise DataError(f"Could not read image {path}: {error}. Remove or replace the file.") \
                from error
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((self.resolution, self.resolution), Image.Resampling.LANCZOS)
        return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def load_image_folder(root: Path, resolution: int, *, max_images: int | None = None,
                      workers: int = 0) -> GanData:
    if not root.is_dir():
        raise DataError(f"Image folder {root} was not found. Pass --dataset imagefolder:PATH "
                        "with PATH a folder of .png or .jpg images (subfolders allowed).")
    paths = _list_images(root)
    if max_images is not None:
        paths = paths[:max_images]
    if not paths:
        raise DataError(f"No images ({', '.join(sorted(IMAGE_EXTENSIONS))}) were found under "
                        f"{root}. Check the path passed to --dataset imagefolder:PATH.")
    _check_memory(len(paths), resolution)

    classes = sorted({p.relative_to(root).parts[0] for p in paths if len(p.relative_to(root).parts) > 1})
    labels = None
    if len(classes) >= 2 and all(len(p.relative_to(root).parts) > 1 for p in paths):
        index = {name: i for i, name in enumerate(classes)}
        labels = torch.tensor([index[p.relative_to(root).parts[0]] for p in paths])
    else:
        classes = []

    loader = torch.utils.data.DataLoader(_FolderImages(paths, resolution), batch_size=64,
                                         num_workers=workers)
    images = torch.empty(len(paths), 3, resolution, resolution, dtype=torch.uint8)
    done, started, last_log = 0, time.monotonic(), time.monotonic()
    for batch in loader:
        images[done:done + len(batch)] = batch
        done += len(batch)
        if time.monotonic() - last_log > 10:
            log.info("Decoded %d of %d images (%.0f images/s).", done, len(paths),
                     done / (time.monotonic() - started))
            last_log = time.monotonic()
    log.info("Loaded %d images from %s at %d px%s.", len(paths), root, resolution,
             f" in {len(classes)} classes" if labels is not None else "")
    return GanData(f"imagefolder:{root}", images, labels, classes)


def _check_memory(count: int, resolution: int) -> None:
    import psutil

    needed = count * 3 * resolution * resolution
    available = psutil.virtual_memory().available
    if needed > MAX_MEMORY_FRACTION * available:
        raise DataError(
            f"{count} images at {resolution} px need {needed / 2**30:.1f} GiB in memory, more "
            f"than half of the {available / 2**30:.1f} GiB available. Lower --resolution or "
            "limit the number of images with --max-images.")


def batch_indices(seed: int, step: int, batch: int, count: int) -> tuple[Tensor, Tensor]:
    """Image indices (drawn with replacement) and x-flip flags of training step `step`.

    They depend only on (seed, step), so a resumed run draws the same batches.
    """
    generator = torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63))
    indices = torch.randint(0, count, (batch,), generator=generator)
    flips = torch.rand(batch, generator=generator) < 0.5
    return indices, flips


def real_batch(data: GanData, *, seed: int, step: int, batch: int, mirror: bool,
               device: torch.device) -> Tensor:
    """Return the float images in [-1, 1] of training step `step`, x-flipped at random when
    `mirror` is set."""
    indices, flips = batch_indices(seed, step, batch, len(data))
    images = to_float(data.images[indices])
    if mirror:
        images = torch.where(flips[:, None, None, None], images.flip(3), images)
    return images.to(device, non_blocking=True)
