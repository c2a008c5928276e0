"""Image-classification data sets by name: `build_dataset("digits", DataOptions(...))`.

Importing this package registers every built-in data set.
"""

from rlo_core.data import digits  # noqa: F401  (registers the data set)
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
