"""`hf:PATH`: a Hugging Face `datasets` folder with an image and a label column.

PATH is a folder written by `DatasetDict.save_to_disk` with a train split and a test (or
validation) split, or a folder of parquet files named `train-*.parquet` and `test-*.parquet`
as the Hub stores them. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from rlo_core.data.hf_tables import (
    IMAGE_COLUMNS,
    LABEL_COLUMNS,
    TableImages,
    load_table_folder,
    table_image,
    table_labels,
)
from rlo_core.data.registry import DataOptions, ImageDataset, register_dataset
from rlo_core.data.transforms import SMALL_IMAGE_MAX, transform_pair
from rlo_core.errors import DataError

LARGE_DEFAULT_SIZE = 224
# ImageNet statistics: a neutral choice for photos when the data set's own are unknown.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
LAYOUT = ("a save_to_disk folder (dataset_dict.json) with train and test splits, or "
          "train-*.parquet and test-*.parquet files, with an image column "
          f"({', '.join(IMAGE_COLUMNS)}) and an integer label column ({', '.join(LABEL_COLUMNS)})")


@register_dataset("hf", num_classes=None, image_size=None,
                  description="hf:PATH, a Hugging Face datasets folder (save_to_disk or parquet) "
                              "with image and label columns")
def build_hf_folder(options: DataOptions) -> ImageDataset:
    if not options.argument:
        raise DataError(f"hf needs a folder: --dataset hf:PATH, where PATH is {LAYOUT}.")
    root = Path(options.argument).expanduser()
    if not root.is_dir():
        raise DataError(f"hf:{options.argument}: {root} is not a folder. Expected {LAYOUT}.")
    tables = load_table_folder(root)
    if tables is None:
        raise DataError(f"hf:{options.argument}: {root} contains neither dataset_dict.json nor "
                        f"train-*.parquet and test-*.parquet files. Expected {LAYOUT}.")

    train_labels = table_labels(tables.train, tables.label_column)
    test_labels = table_labels(tables.test, tables.label_column)
    if not train_labels or not test_labels:
        raise DataError(f"{root} has {len(train_labels)} train and {len(test_labels)} test rows; "
                        "both splits need images.")
    lowest = min(train_labels + test_labels)
    if lowest < 0:
        raise DataError(f"{root} has the label {lowest} in column {tables.label_column}; "
                        "labels must be class indices from 0.")
    num_classes = max(len(tables.classes), max(train_labels + test_labels) + 1)
    classes = tables.classes or [str(index) for index in range(num_classes)]

    native = max(table_image(tables.train, tables.image_column, 0).size)
    size = options.image_size or (native if native <= SMALL_IMAGE_MAX else LARGE_DEFAULT_SIZE)
    train_tf, test_tf = transform_pair(options, native_size=native, image_size=size, mean=MEAN,
                                       std=STD, uniform=False)
    train = TableImages(tables.train, tables.image_column, train_labels, train_tf)
    test = TableImages(tables.test, tables.image_column, test_labels, test_tf)
    return ImageDataset(name=f"hf:{root.name}", train=train, test=test, num_classes=num_classes,
                        image_size=size, mean=MEAN, std=STD, classes=classes)

