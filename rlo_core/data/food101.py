"""Food-101 (101 classes, 75,750 train / 25,250 test images) in the layout of its archive.

    food-101/images/<class>/<id>.jpg
    food-101/meta/classes.txt     class folder names, one per line, in label order
    food-101/meta/train.txt       <class>/<id> per line, without the .jpg suffix
    food-101/meta/test.txt
"""

from __future__ import annotations

import logging
from pathlib import Path

from rlo_core.data.image_lists import FileImages, list_images
from rlo_core.data.layout import find_root, read_lines, require_file
from rlo_core.data.registry import DataOptions, ImageDataset, register_dataset
from rlo_core.data.transforms import transform_pair
from rlo_core.errors import DataError

log = logging.getLogger(__name__)

NUM_CLASSES = 101
DEFAULT_SIZE = 224
# The photos are rescaled to at most 512 px on the longer side.
NATIVE_SIZE = 512
# ImageNet statistics, the usual choice for Food-101 and for nets pretrained on ImageNet.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
URL = "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz"
LAYOUT = ("food-101/ with images/<class>/<id>.jpg and meta/classes.txt, meta/train.txt and "
          "meta/test.txt (lines '<class>/<id>')")
FIX = f"Run again with --download, or download {URL} (about 5 GB) and extract it into --data-dir."


def find_food_root(data_dir: Path) -> Path:
    candidates = [data_dir / "food-101", data_dir]
    root = find_root(candidates, "images")
    if root is None:
        raise DataError(f"Food-101 not found: no images/ folder in "
                        f"{' or '.join(map(str, candidates))}. Expected layout: {LAYOUT}. {FIX}")
    return root


def read_split(root: Path, split: str, class_index: dict[str, int],
               on_disk: dict[str, dict[str, Path]]) -> tuple[list[Path], list[int]]:
    listing = require_file(root / "meta" / f"{split}.txt", layout=LAYOUT, fix=FIX)
    paths, labels = [], []
    for number, line in enumerate(read_lines(listing), start=1):
        class_name, _, image_id = line.partition("/")
        if class_name not in class_index or not image_id:
            raise DataError(f"{listing} line {number} ('{line}') does not name an image of a "
                            f"class in {root / 'meta' / 'classes.txt'} as '<class>/<id>'.")
        path = on_disk[class_name].get(image_id)
        if path is None:
            raise DataError(f"{listing} line {number} lists {line}, but "
                            f"{root / 'images' / class_name} has no image {image_id}.jpg. "
                            f"Extract {URL} again.")
        paths.append(path)
        labels.append(class_index[class_name])
    return paths, labels


@register_dataset("food-101", num_classes=NUM_CLASSES, image_size=DEFAULT_SIZE,
                  aliases=("food101",),
                  description="Food-101: 75,750 train / 25,250 test photos, 224 px crops, 101 "
                              "classes")
def build_food101(options: DataOptions) -> ImageDataset:
    data_dir = Path(options.data_dir).expanduser()
    if options.download and not (data_dir / "food-101" / "images").is_dir():
        download(data_dir)
    root = find_food_root(data_dir)
    classes = read_lines(require_file(root / "meta" / "classes.txt", layout=LAYOUT, fix=FIX))
    if len(classes) != NUM_CLASSES:
        log.warning("%s lists %d classes; Food-101 has %d. Training on the %d listed.",
                    root / "meta" / "classes.txt", len(classes), NUM_CLASSES, len(classes))
    on_disk = {}
    for name in classes:
        folder = root / "images" / name
        images = list_images(folder) if folder.is_dir() else []
        if not images:
            raise DataError(f"Class folder {folder} is missing or contains no images. Expected "
                            f"layout: {LAYOUT}. {FIX}")
        on_disk[name] = {path.stem: path for path in images}
    class_index = {name: index for index, name in enumerate(classes)}
    train_paths, train_labels = read_split(root, "train", class_index, on_disk)
    test_paths, test_labels = read_split(root, "test", class_index, on_disk)

    size = options.image_size or DEFAULT_SIZE
    train_tf, test_tf = transform_pair(options, native_size=NATIVE_SIZE, image_size=size,
                                       mean=MEAN, std=STD, uniform=False)
    return ImageDataset(name="food-101", train=FileImages(train_paths, train_labels, train_tf),
                        test=FileImages(test_paths, test_labels, test_tf),
                        num_classes=len(classes), image_size=size, mean=MEAN, std=STD,
                        classes=classes)


def download(data_dir: Path) -> None:
    import torchvision

    log.info("Downloading Food-101 (about 5 GB) to %s with torchvision", data_dir)
    try:
        torchvision.datasets.Food101(root=str(data_dir), split="train", download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        raise DataError(f"Downloading Food-101 failed: {error}. Without internet, fetch {URL} "
                        f"on another machine and extract it into {data_dir}.") from error
