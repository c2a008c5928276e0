"""Registry of image-classification data sets, built by name.

A builder takes `DataOptions` and returns an `ImageDataset`. Names may carry an argument
after a colon (`imagefolder:PATH`, `hf:PATH`); the registry key is the part before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from rlo_core.errors import DataError


@dataclass
class DataOptions:
    data_dir: Path = Path("./data")
    image_size: Optional[int] = None  # None: the data set's native size
    aug: bool = True
    download: bool = False
    seed: int = 0
    argument: Optional[str] = None  # the part after "name:", for example a folder path


@dataclass
class ImageDataset:
    """Train and test splits of a classification data set, ready for a DataLoader.

    Items are (image tensor [3, H, W] normalized with `mean`/`std`, integer label).
    """

    name: str
    train: Any
    test: Any
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    builder: Callable[[DataOptions], ImageDataset]
    num_classes: Optional[int]  # None when it depends on the folder (imagefolder, hf)
    image_size: Optional[int]
    description: str
    aliases: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {}
_ALIASES: dict[str, str] = {}


def register_dataset(name: str, *, num_classes: Optional[int], image_size: Optional[int],
                     description: str, aliases: tuple[str, ...] = ()):
    def decorate(builder: Callable[[DataOptions], ImageDataset]):
        DATASETS[name] = DatasetSpec(name, builder, num_classes, image_size, description, aliases)
        for alias in aliases:
            _ALIASES[alias] = name
        return builder

    return decorate


def split_name(name: str) -> tuple[str, Optional[str]]:
    key, _, argument = name.partition(":")
    key = key.strip().lower().replace("_", "-")
    return _ALIASES.get(key, key), (argument or None)


def dataset_spec(name: str) -> DatasetSpec:
    from rlo_core.losses import unknown_name_message

    key, _ = split_name(name)
    if key not in DATASETS:
        raise DataError(unknown_name_message("dataset", name, [*DATASETS, *_ALIASES]))
    return DATASETS[key]


def build_dataset(name: str, options: DataOptions) -> ImageDataset:
    spec = dataset_spec(name)
    _, argument = split_name(name)
    options.argument = argument
    options.data_dir = Path(options.data_dir)
    return spec.builder(options)
