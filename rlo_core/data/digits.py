"""scikit-learn's handwritten digits: 1,797 real 8x8 grey-scale images, shipped with the package.

The offline default data set. Images are scaled to [0, 255], given 3 channels and resized to
the requested image size; the train/test split is a fixed stratified 80/20 split.
"""

from __future__ import annotations

import torch

from rlo_core.data.image_lists import TensorImages
from rlo_core.data.registry import DataOptions, ImageDataset, register_dataset

DIGITS_MEAN = (0.3051, 0.3051, 0.3051)
DIGITS_STD = (0.3791, 0.3791, 0.3791)
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8)
    images = images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(digits.target).long()
    train_idx, test_idx = train_test_split(
        range(len(labels)), test_size=TEST_FRACTION, random_state=SPLIT_SEED,
        stratify=digits.target)
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]


@register_dataset("digits", num_classes=10, image_size=32,
                  description="scikit-learn handwritten digits, 8x8 upsampled to 32 px (offline, 1,437 train / 360 test)")
def build_digits(options: DataOptions) -> ImageDataset:
    from torchvision.transforms import v2

    size = options.image_size or 32
    train_x, train_y, test_x, test_y = load_digits_tensors()
    resize = v2.Resize(size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
    normalize = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(DIGITS_MEAN, DIGITS_STD)]
    # Digits are not mirror-symmetric, so no flip; a small shift is the only augmentation.
    shift = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1))] if options.aug else []
    train_tf = v2.Compose([resize, *shift, *normalize])
    test_tf = v2.Compose([resize, *normalize])
    return ImageDataset(
        name="digits", train=TensorImages(train_x, train_y, train_tf),
        test=TensorImages(test_x, test_y, test_tf), num_classes=10, image_size=size,
        mean=DIGITS_MEAN, std=DIGITS_STD, classes=[str(i) for i in range(10)])
