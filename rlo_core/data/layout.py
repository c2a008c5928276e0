"""Checks of on-disk data set layouts that raise a DataError naming the path and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from rlo_core.errors import DataError
from rlo_core.data.image_lists import list_images


def find_root(candidates: Iterable[Path], marker: str) -> Optional[Path]:
    """Return the first candidate folder that contains `marker` (a file or folder name)."""
    for folder in candidates:
        if (folder / marker).exists():
            return folder
    return None


def require_file(path: Path, *, layout: str, fix: str) -> Path:
    if not path.is_file():
        raise DataError(f"Missing {path}. Expected layout: {layout}. {fix}")
    return path


def require_dir(path: Path, *, layout: str, fix: str) -> Path:
    if not path.is_dir():
        raise DataError(f"Missing folder {path}. Expected layout: {layout}. {fix}")
    return path


def read_lines(path: Path) -> list[str]:
    """Return the non-empty, stripped lines of a text file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def class_folders(split_dir: Path, *, layout: str, fix: str) -> list[Path]:
    """Return the class folders of a class-per-folder split, sorted by name.

    Raises when the split has no class folders (images lying directly in it) or when a class
    folder contains no images.
    """
    require_dir(split_dir, layout=layout, fix=fix)
    folders = sorted(path for path in split_dir.iterdir()
                     if path.is_dir() and not path.name.startswith("."))
    if not folders:
        loose = list_images(split_dir)
        found = f"{len(loose)} images directly in it" if loose else "nothing"
        raise DataError(f"{split_dir} has no class folders ({found}). Expected layout: "
                        f"{layout}. {fix}")
    for folder in folders:
        if list_images(folder):
            continue
        if (folder / "images").is_dir():
            raise DataError(f"Class folder {folder} contains no images, only an images/ "
                            "subfolder: this is the Tiny-ImageNet layout, so use --dataset "
                            "tiny-imagenet.")
        raise DataError(f"Class folder {folder} contains no images. Every class folder "
                        f"needs at least one image file; remove the empty folder or add "
                        f"its images. Expected layout: {layout}.")
    return folders


def scan_class_folders(folders: list[Path], class_index: dict[str, int]
                       ) -> tuple[list[Path], list[int]]:
    """Return the image paths in `folders` with the index of each folder's class."""
    paths, labels = [], []
    for folder in folders:
        images = list_images(folder)
        paths += images
        labels += [class_index[folder.name]] * len(images)
    return paths, labels
