"""Tiny-ImageNet, Food-101, ImageNet-1k, imagefolder:PATH and hf:PATH on fixtures in the layout
each data set ships in: a few tiny images per class, written with PIL."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from rlo_core.data import DataOptions, build_dataset
from rlo_core.errors import DataError

WNIDS = ["n01443537", "n01629819", "n01641577"]


def write_image(path: Path, size=(64, 64), color=(120, 30, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def labels_by_name(split) -> dict[str, int]:
    return {Path(path).name: label for path, label in zip(split.paths, split.labels)}


# --- Tiny-ImageNet ---------------------------------------------------------------------------

def write_tiny_imagenet(data_dir: Path) -> Path:
    root = data_dir / "tiny-imagenet-200"
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (root / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\n"
                                    "n01629819\tEuropean fire salamander\n")
    for wnid in WNIDS:
        for i in range(2):
            write_image(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG")
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    annotations = []
    for i, wnid in enumerate([WNIDS[2], WNIDS[0], WNIDS[1], WNIDS[2]]):
        write_image(root / "val" / "images" / f"val_{i}.JPEG")
        annotations.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    write_image(root / "test" / "images" / "test_0.JPEG")
    return root


def test_tiny_imagenet_counts_and_labels(tmp_path):
    write_tiny_imagenet(tmp_path)
    dataset = build_dataset("tiny-imagenet", DataOptions(data_dir=tmp_path))
    assert dataset.num_classes == 3
    assert len(dataset.train) == 6
    assert len(dataset.test) == 4
    assert labels_by_name(dataset.test)["val_0.JPEG"] == 2
    assert labels_by_name(dataset.test)["val_1.JPEG"] == 0
    assert labels_by_name(dataset.train)["n01629819_1.JPEG"] == 1
    assert dataset.classes[:3] == ["goldfish", "European fire salamander", "n01641577"]


def test_tiny_imagenet_items_at_64px(tmp_path):
    write_tiny_imagenet(tmp_path)
    dataset = build_dataset("tiny_imagenet", DataOptions(data_dir=tmp_path))
    assert dataset.image_size == 64
    assert dataset.train[0][0].shape == (3, 64, 64)
    assert dataset.test[3][0].shape == (3, 64, 64)


def test_tiny_imagenet_val_without_annotations(tmp_path):
    root = write_tiny_imagenet(tmp_path)
    (root / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataError) as error:
        build_dataset("tiny-imagenet", DataOptions(data_dir=tmp_path))
    assert "val_annotations.txt is missing" in str(error.value)
    assert "one class" in str(error.value)


def test_tiny_imagenet_read_as_imagefolder(tmp_path):
    root = write_tiny_imagenet(tmp_path)
    with pytest.raises(DataError, match="--dataset tiny-imagenet"):
        build_dataset(f"imagefolder:{root}", DataOptions())


def test_tiny_imagenet_val_as_one_class(tmp_path):
    root = write_tiny_imagenet(tmp_path)
    # With train/<wnid>/*.JPEG, imagefolder gets as far as val/images, a single "class".
    for wnid in WNIDS:
        for image in (root / "train" / wnid / "images").iterdir():
            image.rename(root / "train" / wnid / image.name)
        (root / "train" / wnid / "images").rmdir()
    with pytest.raises(DataError) as error:
        build_dataset(f"imagefolder:{root}", DataOptions())
    assert "single folder 'images'" in str(error.value)
    assert "--dataset tiny-imagenet" in str(error.value)


def test_tiny_imagenet_unknown_wnid_in_annotations(tmp_path):
    root = write_tiny_imagenet(tmp_path)
    with (root / "val" / "val_annotations.txt").open("a") as file:
        file.write("val_0.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match="n99999999"):
        build_dataset("tiny-imagenet", DataOptions(data_dir=tmp_path))


def test_tiny_imagenet_empty_class_folder(tmp_path):
    root = write_tiny_imagenet(tmp_path)
    for image in (root / "train" / WNIDS[1] / "images").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=f"{WNIDS[1]}/images contains no images"):
        build_dataset("tiny-imagenet", DataOptions(data_dir=tmp_path))


def test_tiny_imagenet_absent_names_url(tmp_path):
    with pytest.raises(DataError, match="tiny-imagenet-200.zip"):
        build_dataset("tiny-imagenet", DataOptions(data_dir=tmp_path))


# --- Food-101 --------------------------------------------------------------------------------

FOOD_CLASSES = ["apple_pie", "baby_back_ribs", "waffles"]


def write_food101(data_dir: Path) -> Path:
    root = data_dir / "food-101"
    train, test = [], []
    for c, name in enumerate(FOOD_CLASSES):
        for i in range(3):
            image_id = f"{1000 * (c + 1) + i}"
            write_image(root / "images" / name / f"{image_id}.jpg", size=(80, 60))
            (test if i == 2 else train).append(f"{name}/{image_id}")
    (root / "meta").mkdir()
    (root / "meta" / "classes.txt").write_text("\n".join(FOOD_CLASSES) + "\n")
    (root / "meta" / "train.txt").write_text("\n".join(train) + "\n")
    (root / "meta" / "test.txt").write_text("\n".join(test) + "\n")
    return root


def test_food101_counts_and_labels(tmp_path):
    write_food101(tmp_path)
    dataset = build_dataset("food101", DataOptions(data_dir=tmp_path, image_size=32))
    assert dataset.num_classes == 3
    assert len(dataset.train) == 6
    assert len(dataset.test) == 3
    assert labels_by_name(dataset.test)["3002.jpg"] == 2
    assert labels_by_name(dataset.train)["2001.jpg"] == 1
    assert dataset.train[0][0].shape == (3, 32, 32)
    assert dataset.test[0][0].shape == (3, 32, 32)


def test_food101_default_size_224(tmp_path):
    write_food101(tmp_path)
    dataset = build_dataset("food-101", DataOptions(data_dir=tmp_path, aug=False))
    assert dataset.image_size == 224
    assert dataset.test[1][0].shape == (3, 224, 224)


def test_food101_missing_train_list(tmp_path):
    root = write_food101(tmp_path)
    (root / "meta" / "train.txt").unlink()
    with pytest.raises(DataError) as error:
        build_dataset("food-101", DataOptions(data_dir=tmp_path))
    assert f"Missing {root / 'meta' / 'train.txt'}" in str(error.value)
    assert "food-101.tar.gz" in str(error.value)


def test_food101_listed_image_missing(tmp_path):
    root = write_food101(tmp_path)
    (root / "images" / "waffles" / "3000.jpg").unlink()
    with pytest.raises(DataError, match="waffles/3000"):
        build_dataset("food-101", DataOptions(data_dir=tmp_path))


def test_food101_empty_class_folder(tmp_path):
    root = write_food101(tmp_path)
    for image in (root / "images" / "baby_back_ribs").iterdir():
        image.unlink()
    with pytest.raises(DataError, match="baby_back_ribs is missing or contains no images"):
        build_dataset("food-101", DataOptions(data_dir=tmp_path))


# --- ImageNet-1k -----------------------------------------------------------------------------

def write_imagenet_train(root: Path) -> None:
    for wnid in WNIDS:
        for i in range(2):
            write_image(root / "train" / wnid / f"{wnid}_{i}.JPEG", size=(40, 30))


def test_imagenet_val_class_folders(tmp_path):
    root = tmp_path / "imagenet"
    write_imagenet_train(root)
    write_image(root / "val" / WNIDS[1] / "ILSVRC2012_val_00000001.JPEG")
    write_image(root / "val" / WNIDS[2] / "ILSVRC2012_val_00000002.JPEG")
    dataset = build_dataset("imagenet", DataOptions(data_dir=tmp_path, image_size=32))
    assert dataset.num_classes == 3
    assert len(dataset.train) == 6
    assert labels_by_name(dataset.test) == {"ILSVRC2012_val_00000001.JPEG": 1,
                                            "ILSVRC2012_val_00000002.JPEG": 2}


def test_imagenet_flat_val_kaggle_csv(tmp_path):
    root = tmp_path / "ILSVRC" / "Data" / "CLS-LOC"
    write_imagenet_train(root)
    for i in (1, 2, 3):
        write_image(root / "val" / f"ILSVRC2012_val_0000000{i}.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        f"ILSVRC2012_val_00000001,{WNIDS[2]} 1 2 3 4 {WNIDS[2]} 5 6 7 8\n"
        f"ILSVRC2012_val_00000002,{WNIDS[0]} 1 2 3 4\n"
        f"ILSVRC2012_val_00000003,{WNIDS[1]} 1 2 3 4\n")
    dataset = build_dataset("imagenet1k", DataOptions(data_dir=tmp_path, image_size=32))
    assert labels_by_name(dataset.test)["ILSVRC2012_val_00000001.JPEG"] == 2
    assert labels_by_name(dataset.test)["ILSVRC2012_val_00000003.JPEG"] == 1
    assert dataset.test[0][0].shape == (3, 32, 32)


def test_imagenet_flat_val_index_labels(tmp_path):
    root = tmp_path / "imagenet"
    write_imagenet_train(root)
    write_image(root / "val" / "a.JPEG")
    write_image(root / "val" / "b.JPEG")
    (root / "val.txt").write_text("a.JPEG 2\nb.JPEG 0\n")
    dataset = build_dataset("imagenet1k", DataOptions(data_dir=tmp_path, image_size=32))
    assert labels_by_name(dataset.test) == {"a.JPEG": 2, "b.JPEG": 0}


def test_imagenet_flat_val_without_labels(tmp_path):
    root = tmp_path / "imagenet"
    write_imagenet_train(root)
    write_image(root / "val" / "a.JPEG")
    with pytest.raises(DataError, match="no label file"):
        build_dataset("imagenet1k", DataOptions(data_dir=tmp_path))


# --- imagefolder:PATH ------------------------------------------------------------------------

def write_image_folder(root: Path, eval_split="val") -> Path:
    for name, color in (("cat", (200, 0, 0)), ("dog", (0, 200, 0))):
        for i in range(3):
            write_image(root / "train" / name / f"{name}{i}.png", size=(24, 24), color=color)
        write_image(root / eval_split / name / f"{name}_eval.png", size=(24, 24), color=color)
    return root


def test_imagefolder_counts_and_labels(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    dataset = build_dataset(f"imagefolder:{root}", DataOptions())
    assert dataset.classes == ["cat", "dog"]
    assert len(dataset.train) == 6
    assert labels_by_name(dataset.test) == {"cat_eval.png": 0, "dog_eval.png": 1}
    assert dataset.image_size == 24
    assert dataset.train[5][0].shape == (3, 24, 24)


def test_imagefolder_test_split(tmp_path):
    root = write_image_folder(tmp_path / "pets", eval_split="test")
    dataset = build_dataset(f"imagefolder:{root}", DataOptions(image_size=32))
    assert len(dataset.test) == 2
    assert dataset.test[0][0].shape == (3, 32, 32)


def test_imagefolder_empty_class_folder(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    (root / "train" / "bird").mkdir()
    with pytest.raises(DataError, match="bird contains no images"):
        build_dataset(f"imagefolder:{root}", DataOptions())


def test_imagefolder_images_without_class_folders(tmp_path):
    root = tmp_path / "flat"
    write_image(root / "train" / "a.png")
    with pytest.raises(DataError, match="no class folders"):
        build_dataset(f"imagefolder:{root}", DataOptions())


def test_imagefolder_unknown_eval_class(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    write_image(root / "val" / "horse" / "h.png")
    with pytest.raises(DataError, match="horse"):
        build_dataset(f"imagefolder:{root}", DataOptions())


def test_imagefolder_needs_path(tmp_path):
    with pytest.raises(DataError, match="imagefolder:PATH"):
        build_dataset("imagefolder", DataOptions())


# --- hf:PATH ---------------------------------------------------------------------------------

def test_hf_folder_counts_and_labels(tmp_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as ImageFeature

    features = Features({"image": ImageFeature(), "labels": ClassLabel(names=["a", "b", "c"])})

    def split(labels):
        images = [Image.new("RGB", (16, 16), (60 * label, 0, 0)) for label in labels]
        return Dataset.from_dict({"image": images, "labels": labels}, features=features)

    DatasetDict({"train": split([2, 0, 1]), "validation": split([1])}).save_to_disk(
        str(tmp_path / "saved"))
    dataset = build_dataset(f"hf:{tmp_path / 'saved'}", DataOptions())
    assert dataset.num_classes == 3
    assert dataset.classes == ["a", "b", "c"]
    assert dataset.train.labels == [2, 0, 1]
    assert dataset.test[0][1] == 1
    assert dataset.test[0][0].shape == (3, 16, 16)


def test_hf_folder_without_data(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="dataset_dict.json"):
        build_dataset(f"hf:{tmp_path / 'nothing'}", DataOptions())


def test_digits_still_default_offline():
    dataset = build_dataset("digits", DataOptions(image_size=16))
    image, label = dataset.train[0]
    assert image.shape == (3, 16, 16)
    assert torch.is_tensor(image)
    assert dataset.num_classes == 10
