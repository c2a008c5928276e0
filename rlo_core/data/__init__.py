"""Image-classification data sets by name: `build_dataset("digits", DataOptions(...))`.

Importing this package registers every built-in data set.
"""

# Each module registers its data sets when imported.
from rlo_core.data import cifar, digits, folder, food101, hf, imagenet, tiny_imagenet  # noqa: F401
from rlo_core.data.registry import (
    DATASETS,
    DataOptions,
    DatasetSpec,
    ImageDataset,
    build_dataset,
    dataset_spec,
    register_dataset,
)

__all__ = ["DATASETS", "DataOptions", "DatasetSpec", "ImageDataset", "build_dataset",
           "dataset_spec", "register_dataset"]
