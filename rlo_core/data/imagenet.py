"""ImageNet-1k (ILSVRC 2012) from class folders, with a flat or class-folder val split.

    ROOT/train/<wnid>/*.JPEG
    ROOT/val/<wnid>/*.JPEG                  val in class folders, or
    ROOT/val/*.JPEG + a label file          val flat, labelled by one of:
        LOC_val_solution.csv                Kaggle: 'ImageId,PredictionString' (wnid first)
        val_labels.txt or val.txt           '<file> <wnid or class index>' per line

ROOT is DATA_DIR/imagenet, DATA_DIR/imagenet1k, DATA_DIR/ILSVRC2012, the Kaggle
DATA_DIR/ILSVRC/Data/CLS-LOC, or DATA_DIR itself. Class indices follow the sorted wnids, the
usual ImageNet order, so integer labels in val.txt use it too. Label files are looked for in
ROOT/val, ROOT and DATA_DIR.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rlo_core.data.image_lists import FileImages, list_images
from rlo_core.data.layout import class_folders, find_root, read_lines, scan_class_folders
from rlo_core.data.registry import DataOptions, ImageDataset, register_dataset
from rlo_core.data.transforms import transform_pair
from rlo_core.errors import DataError

log = logging.getLogger(__name__)

NUM_CLASSES = 1000
DEFAULT_SIZE = 224
NATIVE_SIZE = 500  # a typical ImageNet photo side; only selects the large-image transforms
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
ROOT_NAMES = ("imagenet", "imagenet1k", "imagenet-1k", "ILSVRC2012", "ILSVRC/Data/CLS-LOC")
LABEL_FILES = ("LOC_val_solution.csv", "val_labels.txt", "val.txt")
LAYOUT = ("ROOT/train/<wnid>/*.JPEG and ROOT/val/<wnid>/*.JPEG, or ROOT/val/*.JPEG with "
          "LOC_val_solution.csv or val_labels.txt ('<file> <wnid or index>' lines)")
FIX = ("Download ILSVRC 2012 from https://image-net.org (registration required) or the Kaggle "
       "'imagenet-object-localization-challenge', and point --data-dir at the folder above ROOT.")


def find_imagenet_root(data_dir: Path) -> Path:
    candidates = [data_dir / name for name in ROOT_NAMES] + [data_dir]
    root = find_root(candidates, "train")
    if root is None:
        raise DataError(f"ImageNet-1k not found: no train/ folder in "
                        f"{', '.join(map(str, candidates))}. Expected layout: {LAYOUT}. {FIX}")
    return root


def read_label_file(path: Path, class_index: dict[str, int]) -> dict[str, int]:
    """Return {image file stem: class index} from a Kaggle CSV or a '<file> <label>' list."""
    wnids = sorted(class_index, key=class_index.get)
    labels = {}
    lines = read_lines(path)
    if path.suffix == ".csv" and lines and lines[0].lower().startswith("imageid"):
        lines = lines[1:]
    for number, line in enumerate(lines, start=1):
        fields = line.replace(",", " ").split()
        if len(fields) < 2:
            raise DataError(f"{path} line {number} ('{line}') does not hold a file name and a "
                            "label.")
        stem, label = Path(fields[0]).stem, fields[1]
        if label in class_index:
            labels[stem] = class_index[label]
        elif label.isdigit() and int(label) < len(wnids):
            labels[stem] = int(label)
        else:
            raise DataError(f"{path} line {number} labels {fields[0]} with '{label}', which is "
                            f"neither a class folder in train/ nor a class index below "
                            f"{len(wnids)}.")
    return labels


def read_flat_val(root: Path, data_dir: Path, class_index: dict[str, int]):
    val_dir = root / "val"
    images = list_images(val_dir)
    label_file = next((folder / name for name in LABEL_FILES
                       for folder in (val_dir, root, data_dir) if (folder / name).is_file()), None)
    if label_file is None:
        raise DataError(f"{val_dir} contains {len(images)} images but no class folders, and no "
                        f"label file ({', '.join(LABEL_FILES)}) was found in {val_dir}, {root} or "
                        f"{data_dir}. Expected layout: {LAYOUT}. Sort val into class folders or "
                        "add a label file.")
    labels = read_label_file(label_file, class_index)
    unlabelled = [path.name for path in images if path.stem not in labels]
    if unlabelled:
        raise DataError(f"{len(unlabelled)} images in {val_dir} (for example {unlabelled[0]}) "
                        f"have no label in {label_file}.")
    return images, [labels[path.stem] for path in images]


@register_dataset("imagenet1k", num_classes=NUM_CLASSES, image_size=DEFAULT_SIZE,
                  aliases=("imagenet", "imagenet-1k", "ilsvrc2012"),
                  description="ImageNet-1k: 1.28 M train / 50,000 val photos, 224 px crops, 1000 "
                              "classes")
def build_imagenet(options: DataOptions) -> ImageDataset:
    data_dir = Path(options.data_dir).expanduser()
    root = find_imagenet_root(data_dir)
    train_folders = class_folders(root / "train", layout=LAYOUT, fix=FIX)
    wnids = [folder.name for folder in train_folders]
    if len(wnids) != NUM_CLASSES:
        log.warning("%s has %d class folders; ImageNet-1k has %d. Training on the %d found.",
                    root / "train", len(wnids), NUM_CLASSES, len(wnids))
    class_index = {wnid: index for index, wnid in enumerate(wnids)}
    train_paths, train_labels = scan_class_folders(train_folders, class_index)

    val_dir = root / "val"
    if not val_dir.is_dir():
        raise DataError(f"Missing folder {val_dir}. Expected layout: {LAYOUT}. {FIX}")
    if any(path.is_dir() for path in val_dir.iterdir()):
        val_folders = class_folders(val_dir, layout=LAYOUT, fix=FIX)
        unknown = [folder.name for folder in val_folders if folder.name not in class_index]
        if unknown:
            raise DataError(f"{val_dir} has class folders that train/ lacks: "
                            f"{', '.join(unknown[:5])}. Both splits need the same wnids.")
        val_paths, val_labels = scan_class_folders(val_folders, class_index)
    else:
        val_paths, val_labels = read_flat_val(root, data_dir, class_index)

    size = options.image_size or DEFAULT_SIZE
    train_tf, test_tf = transform_pair(options, native_size=NATIVE_SIZE, image_size=size,
                                       mean=MEAN, std=STD, uniform=False)
    return ImageDataset(name="imagenet1k", train=FileImages(train_paths, train_labels, train_tf),
                        test=FileImages(val_paths, val_labels, test_tf), num_classes=len(wnids),
                        image_size=size, mean=MEAN, std=STD, classes=wnids)
