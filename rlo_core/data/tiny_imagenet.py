"""Tiny-ImageNet (200 classes, 64 px) in the layout of the official zip archive.

    tiny-imagenet-200/wnids.txt                      one WordNet id per line, the class order
    tiny-imagenet-200/train/<wnid>/images/*.JPEG     500 images per class
    tiny-imagenet-200/val/images/*.JPEG              10,000 images in one folder
    tiny-imagenet-200/val/val_annotations.txt        file name, wnid and box, tab-separated

The validation images serve as the test split (the archive's test images have no labels). A
val folder already sorted into `val/<wnid>/` class folders is read as well.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rlo_core.data.image_lists import FileImages, list_images
from rlo_core.data.layout import find_root, read_lines, require_dir, require_file
from rlo_core.data.registry import DataOptions, ImageDataset, register_dataset
from rlo_core.data.transforms import transform_pair
from rlo_core.errors import DataError

NATIVE_SIZE = 64
NUM_CLASSES = 200
# Per-channel statistics of the Tiny-ImageNet training images, as commonly published.
MEAN = (0.4802, 0.4481, 0.3975)
STD = (0.2302, 0.2265, 0.2262)
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
LAYOUT = ("tiny-imagenet-200/ with wnids.txt, train/<wnid>/images/*.JPEG, and val/images/*.JPEG "
          "labelled by val/val_annotations.txt")
FIX = f"Download {URL} (about 240 MB) and unzip it into --data-dir."

log = logging.getLogger(__name__)


def find_tiny_root(data_dir: Path) -> Path:
    candidates = [data_dir / "tiny-imagenet-200", data_dir]
    root = find_root(candidates, "wnids.txt")
    if root is None:
        raise DataError(f"Tiny-ImageNet not found: no wnids.txt in "
                        f"{' or '.join(map(str, candidates))}. Expected layout: {LAYOUT}. {FIX}")
    return root


def class_names(root: Path, wnids: list[str]) -> list[str]:
    """Return the first English name of each class from words.txt, or the wnid without it."""
    words = {}
    if (root / "words.txt").is_file():
        for line in read_lines(root / "words.txt"):
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip()
    return [words.get(wnid, wnid) for wnid in wnids]


def read_train(root: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    paths, labels = [], []
    for index, wnid in enumerate(wnids):
        folder = require_dir(root / "train" / wnid / "images", layout=LAYOUT, fix=FIX)
        images = list_images(folder)
        if not images:
            raise DataError(f"Class folder {folder} contains no images. Expected layout: "
                            f"{LAYOUT}. Unzip {URL} again.")
        paths += images
        labels += [index] * len(images)
    return paths, labels


def read_val_folders(val_dir: Path, class_index: dict[str, int]) -> tuple[list[Path], list[int]]:
    """Read a val folder sorted into val/<wnid>/ (optionally val/<wnid>/images/) folders."""
    paths, labels = [], []
    for wnid, index in class_index.items():
        folder = val_dir / wnid
        images = list_images(folder / "images") if (folder / "images").is_dir() else []
        images = images or list_images(folder)
        paths += images
        labels += [index] * len(images)
    return paths, labels


def read_val(root: Path, class_index: dict[str, int]) -> tuple[list[Path], list[int]]:
    val_dir = require_dir(root / "val", layout=LAYOUT, fix=FIX)
    annotations = val_dir / "val_annotations.txt"
    images_dir = val_dir / "images"
    if not annotations.is_file():
        if any((val_dir / wnid).is_dir() for wnid in class_index):
            return read_val_folders(val_dir, class_index)
        if images_dir.is_dir():
            raise DataError(
                f"{annotations} is missing, so the {len(list_images(images_dir))} images in "
                f"{images_dir} have no labels: Tiny-ImageNet keeps all validation images in one "
                f"folder, and reading it as a class folder would give them all one class. "
                f"Restore val_annotations.txt from {URL}.")
        require_file(annotations, layout=LAYOUT, fix=FIX)
    require_dir(images_dir, layout=LAYOUT, fix=FIX)

    on_disk = {path.name: path for path in list_images(images_dir)}
    paths, labels = [], []
    for number, line in enumerate(read_lines(annotations), start=1):
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 2:
            raise DataError(f"{annotations} line {number} ('{line}') does not start with a file "
                            "name and a wnid.")
        name, wnid = fields[0], fields[1]
        if wnid not in class_index:
            raise DataError(f"{annotations} line {number} labels {name} with {wnid}, which is "
                            f"not in {root / 'wnids.txt'}.")
        if name not in on_disk:
            raise DataError(f"{annotations} line {number} lists {name}, which is not in "
                            f"{images_dir}. Unzip {URL} again.")
        paths.append(on_disk.pop(name))
        labels.append(class_index[wnid])
    if on_disk:
        raise DataError(f"{len(on_disk)} images in {images_dir} (for example "
                        f"{next(iter(on_disk))}) have no line in {annotations}.")
    return paths, labels


@register_dataset("tiny-imagenet", num_classes=NUM_CLASSES, image_size=NATIVE_SIZE,
                  aliases=("tinyimagenet", "tiny-imagenet-200"),
                  description="Tiny-ImageNet: 100,000 train / 10,000 val images, 64 px, 200 "
                              "classes")
def build_tiny_imagenet(options: DataOptions) -> ImageDataset:
    root = find_tiny_root(Path(options.data_dir).expanduser())
    wnids = read_lines(require_file(root / "wnids.txt", layout=LAYOUT, fix=FIX))
    if len(set(wnids)) != len(wnids):
        raise DataError(f"{root / 'wnids.txt'} lists a wnid twice; it needs one line per class.")
    if len(wnids) != NUM_CLASSES:
        log.warning("%s lists %d classes; Tiny-ImageNet has %d. Training on the %d listed.",
                    root / "wnids.txt", len(wnids), NUM_CLASSES, len(wnids))
    class_index = {wnid: index for index, wnid in enumerate(wnids)}
    train_paths, train_labels = read_train(root, wnids)
    val_paths, val_labels = read_val(root, class_index)

    size = options.image_size or NATIVE_SIZE
    train_tf, test_tf = transform_pair(options, native_size=NATIVE_SIZE, image_size=size,
                                       mean=MEAN, std=STD)
    return ImageDataset(name="tiny-imagenet", train=FileImages(train_paths, train_labels, train_tf),
                        test=FileImages(val_paths, val_labels, test_tf), num_classes=len(wnids),
                        image_size=size, mean=MEAN, std=STD, classes=class_names(root, wnids))
