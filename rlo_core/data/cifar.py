"""CIFAR-10 and CIFAR-100 from the python-pickle folders, a Hugging Face folder or the Hub cache.

Sources, in order:
- `DATA_DIR/cifar-10-batches-py` (or `cifar-100-python`), as distributed by the CIFAR authors.
- `DATA_DIR/cifar10` (or `cifar100`) with a `save_to_disk` folder or parquet files that have
  `img` and `label` (`fine_label`) columns.
- The Hub cache of `uoft-cs/cifar10` (`uoft-cs/cifar100`).
With `--download`, torchvision fetches the pickle folder first.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from rlo_core.data.hf_tables import TableImages, TableSplits, load_table_folder, table_labels
from rlo_core.data.image_lists import TensorImages
from rlo_core.data.registry import DataOptions, ImageDataset, register_dataset
from rlo_core.data.transforms import transform_pair
from rlo_core.errors import DataError

log = logging.getLogger(__name__)

NATIVE_SIZE = 32


@dataclass(frozen=True)
class CifarVariant:
    name: str
    title: str
    num_classes: int
    folder: str  # the folder inside the authors' archive
    train_files: tuple[str, ...]
    test_file: str
    label_key: str
    meta_file: str
    names_key: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    url: str
    table_folders: tuple[str, ...]  # folders under DATA_DIR for save_to_disk or parquet data
    hub_repos: tuple[str, ...]  # Hub dataset ids, as named in the Hub cache


# Mean and standard deviation as in the reference training script.
CIFAR10 = CifarVariant(
    "cifar10", "CIFAR-10", 10, "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "labels", "batches.meta",
    "label_names", (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", ("cifar10", "cifar-10"),
    ("uoft-cs--cifar10", "cifar10"))
CIFAR100 = CifarVariant(
    "cifar100", "CIFAR-100", 100, "cifar-100-python", ("train",), "test", "fine_labels", "meta",
    "fine_label_names", (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761),
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", ("cifar100", "cifar-100"),
    ("uoft-cs--cifar100", "cifar100"))

# The batches hold numpy arrays; nothing else may be constructed while unpickling them.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """Read one CIFAR pickle; keys come back as str whether they were stored as str or bytes."""
    try:
        with path.open("rb") as file:
            batch = ArrayUnpickler(file, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as error:
        raise DataError(f"{path} is not a CIFAR python pickle ({error}). Extract the python "
                        "version of the archive again.") from error
    if not isinstance(batch, dict):
        raise DataError(f"{path} contains a {type(batch).__name__}, not a CIFAR batch dict.")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


def batch_tensors(path: Path, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    batch = read_batch(path)
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{path} lacks the '{'data' if 'data' not in batch else label_key}' "
                        f"entry of a CIFAR batch (found {', '.join(map(str, batch))}).")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * NATIVE_SIZE * NATIVE_SIZE or \
            len(labels) != len(data):
        raise DataError(f"{path} contains data of shape {data.shape} with {len(labels)} labels; "
                        "CIFAR batches contain N rows of 3072 bytes (3x32x32) and N labels.")
    images = torch.from_numpy(data.reshape(-1, 3, NATIVE_SIZE, NATIVE_SIZE).copy())
    return images, torch.from_numpy(labels)


def read_pickle_folder(folder: Path, variant: CifarVariant):
    layout = (f"{folder}/ with {', '.join(variant.train_files)}, {variant.test_file} and "
              f"{variant.meta_file}")
    for name in (*variant.train_files, variant.test_file, variant.meta_file):
        if not (folder / name).is_file():
            raise DataError(f"{variant.title} folder {folder} is incomplete: {name} is missing. "
                            f"Expected layout: {layout}. Extract {variant.url} again, or delete "
                            f"the folder and run with --download.")
    parts = [batch_tensors(folder / name, variant.label_key) for name in variant.train_files]
    train_x = torch.cat([images for images, _ in parts])
    train_y = torch.cat([labels for _, labels in parts])
    test_x, test_y = batch_tensors(folder / variant.test_file, variant.label_key)
    classes = [str(name) for name in read_batch(folder / variant.meta_file).get(
        variant.names_key, [])]
    for split, labels in (("train", train_y), ("test", test_y)):
        if len(labels) and (labels.min() < 0 or labels.max() >= variant.num_classes):
            raise DataError(f"{variant.title} {split} labels in {folder} range from "
                            f"{int(labels.min())} to {int(labels.max())}; expected 0 to "
                            f"{variant.num_classes - 1}. Is this the right archive?")
    return train_x, train_y, test_x, test_y, classes


def download(variant: CifarVariant, data_dir: Path) -> None:
    import torchvision

    dataset_class = {"cifar10": torchvision.datasets.CIFAR10,
                     "cifar100": torchvision.datasets.CIFAR100}[variant.name]
    log.info("Downloading %s to %s with torchvision", variant.title, data_dir)
    try:
        dataset_class(root=str(data_dir), train=True, download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        raise DataError(f"Downloading {variant.title} failed: {error}. Without internet, fetch "
                        f"{variant.url} on another machine and extract it into {data_dir}.") \
            from error


def hub_cache_folders(variant: CifarVariant) -> list[Path]:
    from rlo_core.models.pretrained import hub_cache_dirs

    return [hub / f"datasets--{repo}" for hub in hub_cache_dirs() for repo in variant.hub_repos]


def find_tables(variant: CifarVariant, data_dir: Path) -> Optional[TableSplits]:
    for folder in [data_dir / name for name in variant.table_folders] + \
            hub_cache_folders(variant):
        if folder.is_dir():
            tables = load_table_folder(folder)
            if tables is not None:
                return tables
    return None


def not_found(variant: CifarVariant, data_dir: Path) -> DataError:
    tables = " or ".join(str(data_dir / name) for name in variant.table_folders)
    hub = hub_cache_folders(variant)[0]
    return DataError(
        f"{variant.title} not found. Looked for {data_dir / variant.folder} (the python "
        f"version: {', '.join(variant.train_files)}, {variant.test_file}, {variant.meta_file}), "
        f"for {tables} (a Hugging Face save_to_disk folder or train-*.parquet and "
        f"test-*.parquet files with img and label columns) and for {hub}. Run again with "
        f"--download to fetch it with torchvision, or download {variant.url} and extract it "
        f"into {data_dir}; --data-dir sets the folder.")


def build_cifar(variant: CifarVariant, options: DataOptions) -> ImageDataset:
    data_dir = Path(options.data_dir).expanduser()
    folder = data_dir / variant.folder
    tables = None
    if not folder.exists():
        tables = find_tables(variant, data_dir)
        if tables is None and options.download:
            download(variant, data_dir)
        elif tables is None:
            raise not_found(variant, data_dir)

    size = options.image_size or NATIVE_SIZE
    train_tf, test_tf = transform_pair(options, native_size=NATIVE_SIZE, image_size=size,
                                       mean=variant.mean, std=variant.std)
    if tables is None:
        train_x, train_y, test_x, test_y, classes = read_pickle_folder(folder, variant)
        train = TensorImages(train_x, train_y, train_tf)
        test = TensorImages(test_x, test_y, test_tf)
    else:
        log.info("Reading %s from %s", variant.title, tables.source)
        train = TableImages(tables.train, tables.image_column,
                            table_labels(tables.train, tables.label_column), train_tf)
        test = TableImages(tables.test, tables.image_column,
                           table_labels(tables.test, tables.label_column), test_tf)
        classes = tables.classes
    return ImageDataset(name=variant.name, train=train, test=test,
                        num_classes=variant.num_classes, image_size=size, mean=variant.mean,
                        std=variant.std, classes=classes)


@register_dataset("cifar10", num_classes=10, image_size=NATIVE_SIZE, aliases=("cifar-10",),
                  description="CIFAR-10: 50,000 train / 10,000 test images, 32 px, 10 classes")
def build_cifar10(options: DataOptions) -> ImageDataset:
    return build_cifar(CIFAR10, options)


@register_dataset("cifar100", num_classes=100, image_size=NATIVE_SIZE, aliases=("cifar-100",),
                  description="CIFAR-100: 50,000 train / 10,000 test images, 32 px, 100 classes")
def build_cifar100(options: DataOptions) -> ImageDataset:
    return build_cifar(CIFAR100, options)
