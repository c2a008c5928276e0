"""Image-classification splits from Hugging Face `datasets` folders and parquet files.

Two on-disk forms are read, both offline: a folder written by `DatasetDict.save_to_disk`, and
parquet files as the Hub stores them (`train-*.parquet`, `test-*.parquet`), for example in the
Hub cache. The image column contains encoded image bytes and the label column integers.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from torch.utils.data import Dataset

from rlo_core.errors import DataError

IMAGE_COLUMNS = ("img", "image", "pixel_values")
LABEL_COLUMNS = ("label", "fine_label", "labels", "coarse_label")
TEST_SPLITS = ("test", "validation", "valid", "val")


@dataclass
class TableSplits:
    """Train and test splits of one table data set, with its column names and classes."""

    train: Any  # a datasets.Dataset or a pyarrow.Table
    test: Any
    image_column: str
    label_column: str
    classes: list[str]  # empty when the files do not name the classes
    source: Path


def pick_column(columns: list[str], preferred: tuple[str, ...], role: str, source: Path) -> str:
    for name in preferred:
        if name in columns:
            return name
    raise DataError(f"{source} has no {role} column: expected one of {', '.join(preferred)}, "
                    f"found {', '.join(columns)}.")


def load_saved_dataset(folder: Path) -> TableSplits:
    """Read a `save_to_disk` folder that contains a DatasetDict with train and test splits."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(folder))
    except (FileNotFoundError, ValueError, OSError) as error:
        raise DataError(f"Cannot read the Hugging Face dataset folder {folder}: {error}") \
            from error
    if not isinstance(loaded, DatasetDict):
        raise DataError(f"{folder} contains a single Dataset without splits. Save a DatasetDict "
                        "with 'train' and 'test' splits, for example "
                        "`ds.train_test_split(test_size=0.1).save_to_disk(PATH)`.")
    test_name = next((name for name in TEST_SPLITS if name in loaded), None)
    if "train" not in loaded or test_name is None:
        raise DataError(f"{folder} has the splits {sorted(loaded)}; expected 'train' and one of "
                        f"{', '.join(TEST_SPLITS)}.")
    train, test = loaded["train"], loaded[test_name]
    image_column = pick_column(train.column_names, IMAGE_COLUMNS, "image", folder)
    label_column = pick_column(train.column_names, LABEL_COLUMNS, "label", folder)
    names = getattr(train.features[label_column], "names", None) or []
    return TableSplits(train, test, image_column, label_column, list(names), folder)


def find_parquet_splits(folder: Path) -> Optional[tuple[list[Path], list[Path]]]:
    """Return the (train, test) parquet files below `folder`, or None when either is absent."""
    train = sorted(folder.rglob("train-*.parquet")) + sorted(folder.rglob("train.parquet"))
    test = []
    for split in TEST_SPLITS:
        test = sorted(folder.rglob(f"{split}-*.parquet")) + sorted(folder.rglob(f"{split}.parquet"))
        if test:
            break
    return (train, test) if train and test else None


def class_names_from_metadata(schema, label_column: str) -> list[str]:
    """Return the ClassLabel names that `datasets` stores in a parquet file's schema metadata."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return []
    features = json.loads(raw).get("info", {}).get("features", {})
    return list(features.get(label_column, {}).get("names", []))


def load_parquet(train_files: list[Path], test_files: list[Path], source: Path) -> TableSplits:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # NOTE: parquet splits are read whole into memory (and copied into each DataLoader worker).
    # That suits CIFAR-sized data; for larger sets a save_to_disk folder is memory-mapped.
    try:
        train = pa.concat_tables([pq.read_table(path) for path in train_files])
        test = pa.concat_tables([pq.read_table(path) for path in test_files])
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"Cannot read the parquet files under {source}: {error}") from error
    image_column = pick_column(train.column_names, IMAGE_COLUMNS, "image", source)
    label_column = pick_column(train.column_names, LABEL_COLUMNS, "label", source)
    classes = class_names_from_metadata(train.schema, label_column)
    return TableSplits(train, test, image_column, label_column, classes, source)


def load_table_folder(folder: Path) -> Optional[TableSplits]:
    """Read `folder` as a save_to_disk folder or a folder of parquet files; None if neither."""
    if (folder / "dataset_dict.json").is_file():
        return load_saved_dataset(folder)
    splits = find_parquet_splits(folder) if folder.is_dir() else None
    if splits is not None:
        return load_parquet(*splits, source=folder)
    return None


def decode_image(value):
    """Return an RGB PIL image from a decoded image or a {'bytes', 'path'} record."""
    from PIL import Image

    if isinstance(value, dict):
        if value.get("bytes"):
            value = Image.open(io.BytesIO(value["bytes"]))
        else:
            value = Image.open(value["path"])
    return value.convert("RGB")


def is_arrow_table(table: Any) -> bool:
    import pyarrow as pa

    return isinstance(table, pa.Table)


def table_labels(table: Any, column: str) -> list[int]:
    values = table.column(column).to_pylist() if is_arrow_table(table) else table[column]
    return [int(value) for value in values]


def table_image(table: Any, column: str, index: int):
    """Return the RGB PIL image in row `index` of a pyarrow Table or a datasets.Dataset."""
    if is_arrow_table(table):
        return decode_image(table.column(column)[index].as_py())
    return decode_image(table[index][column])  # `datasets` has decoded it already


class TableImages(Dataset):
    """One split of a table data set, decoding each image when it is read."""

    def __init__(self, table: Any, image_column: str, labels: list[int], transform: Callable):
        self.table, self.image_column = table, image_column
        self.labels, self.transform = labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(table_image(self.table, self.image_column, index)), \
            self.labels[index]
