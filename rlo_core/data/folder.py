"""`imagefolder:PATH`: any data set stored as one folder per class.

    PATH/train/<class>/*.jpg|png|...
    PATH/val/<class>/...   (or PATH/test/<class>/...)

Classes are the train folder names in sorted order. Images of 64 px or less on the longer
side get the CIFAR-style augmentation at their own size; larger ones 224 px crops.
"""

from __future__ import annotations

from pathlib import Path

from rlo_core.data.image_lists import FileImages, list_images, probe_image_size
from rlo_core.data.layout import class_folders, scan_class_folders
from rlo_core.data.registry import DataOptions, ImageDataset, register_dataset
from rlo_core.data.transforms import SMALL_IMAGE_MAX, transform_pair
from rlo_core.errors import DataError

LARGE_DEFAULT_SIZE = 224
# ImageNet statistics: a neutral choice for photos when the data set's own are unknown.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
LAYOUT = "PATH/train/<class>/<image> and PATH/val/<class>/<image> (or PATH/test/<class>/...)"
FIX = "Arrange the images in one folder per class, with the same class names in both splits."


def eval_split_dir(root: Path) -> Path:
    for name in ("val", "test"):
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root} has no val/ or test/ folder for evaluation. Expected layout: "
                    f"{LAYOUT}. {FIX}")


def check_eval_classes(eval_dir: Path, eval_folders: list[Path], class_index: dict[str, int],
                       train_dir: Path) -> None:
    names = [folder.name for folder in eval_folders]
    if names == ["images"] and len(class_index) > 1:
        raise DataError(
            f"{eval_dir} contains a single folder 'images', which would be read as one class while "
            f"{train_dir} has {len(class_index)}. This is the Tiny-ImageNet layout, whose "
            f"validation labels are in val_annotations.txt: use --dataset tiny-imagenet.")
    unknown = [name for name in names if name not in class_index]
    if unknown:
        raise DataError(f"{eval_dir} has class folders that {train_dir} lacks: "
                        f"{', '.join(unknown[:5])}. {FIX}")


@register_dataset("imagefolder", num_classes=None, image_size=None,
                  description="imagefolder:PATH, class-per-folder images in PATH/train and "
                              "PATH/val (or PATH/test)")
def build_image_folder(options: DataOptions) -> ImageDataset:
    if not options.argument:
        raise DataError("imagefolder needs a folder: --dataset imagefolder:PATH, where PATH "
                        f"contains {LAYOUT}.")
    root = Path(options.argument).expanduser()
    if not root.is_dir():
        raise DataError(f"imagefolder:{options.argument}: {root} is not a folder. Expected "
                        f"layout: {LAYOUT}.")
    train_dir = root / "train"
    train_folders = class_folders(train_dir, layout=LAYOUT, fix=FIX)
    classes = [folder.name for folder in train_folders]
    class_index = {name: index for index, name in enumerate(classes)}
    eval_dir = eval_split_dir(root)
    eval_folders = class_folders(eval_dir, layout=LAYOUT, fix=FIX)
    check_eval_classes(eval_dir, eval_folders, class_index, train_dir)
    train_paths, train_labels = scan_class_folders(train_folders, class_index)
    eval_paths, eval_labels = scan_class_folders(eval_folders, class_index)

    native = probe_image_size(list_images(train_folders[0])[0])
    size = options.image_size or (native if native <= SMALL_IMAGE_MAX else LARGE_DEFAULT_SIZE)
    train_tf, test_tf = transform_pair(options, native_size=native, image_size=size, mean=MEAN,
                                       std=STD, uniform=False)
    return ImageDataset(name=f"imagefolder:{root.name}",
                        train=FileImages(train_paths, train_labels, train_tf),
                        test=FileImages(eval_paths, eval_labels, test_tf),
                        num_classes=len(classes), image_size=size, mean=MEAN, std=STD,
                        classes=classes)
