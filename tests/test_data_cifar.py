"""CIFAR-10/100 loaders on fixtures in the real on-disk formats."""

import pickle

import numpy as np
import pytest
import torch

from rlo_core.data import DataOptions, build_dataset
from rlo_core.errors import DataError

PER_BATCH = 3  # images per CIFAR-10 training batch file in the fixture
TEST_IMAGES = 4


def cifar_rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 3072), dtype=np.uint8)


def write_pickle(path, obj) -> None:
    with path.open("wb") as file:
        pickle.dump(obj, file, protocol=2)


def write_cifar10(data_dir):
    """Write cifar-10-batches-py with str keys, as the archive reads under encoding='latin1'."""
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for number in range(1, 6):
        rows = cifar_rows(PER_BATCH, number)
        labels = [(number + i) % 10 for i in range(PER_BATCH)]
        batches[number] = (rows, labels)
        filenames = [f"img_{number}_{i}.png" for i in range(PER_BATCH)]
        write_pickle(folder / f"data_batch_{number}",
                     {"batch_label": f"training batch {number} of 5", "labels": labels,
                      "data": rows, "filenames": filenames})
    test_rows = cifar_rows(TEST_IMAGES, 99)
    write_pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1",
                                         "labels": [9, 8, 7, 6], "data": test_rows,
                                         "filenames": ["t0", "t1", "t2", "t3"]})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    write_pickle(folder / "batches.meta", {"num_cases_per_batch": PER_BATCH,
                                           "label_names": names, "num_vis": 3072})
    return folder, batches, test_rows


def write_cifar100(data_dir):
    """Write cifar-100-python with bytes keys, as Python 3 reads them under encoding='bytes'."""
    folder = data_dir / "cifar-100-python"
    folder.mkdir(parents=True)
    train_rows, test_rows = cifar_rows(5, 1), cifar_rows(2, 2)
    write_pickle(folder / "train", {b"data": train_rows, b"fine_labels": [0, 99, 42, 7, 7],
                                    b"coarse_labels": [0, 1, 2, 3, 3], b"filenames": [b"a"] * 5})
    write_pickle(folder / "test", {b"data": test_rows, b"fine_labels": [99, 1],
                                   b"coarse_labels": [1, 0], b"filenames": [b"b"] * 2})
    write_pickle(folder / "meta", {b"fine_label_names": [f"class{i}" for i in range(100)],
                                   b"coarse_label_names": [f"super{i}" for i in range(20)]})
    return folder, train_rows


def test_cifar10_pickle_counts(tmp_path):
    write_cifar10(tmp_path)
    dataset = build_dataset("cifar10", DataOptions(data_dir=tmp_path))
    assert len(dataset.train) == 5 * PER_BATCH
    assert len(dataset.test) == TEST_IMAGES
    assert dataset.num_classes == 10
    assert dataset.classes[9] == "truck"


def test_cifar10_pickle_labels_and_pixels(tmp_path):
    _, batches, test_rows = write_cifar10(tmp_path)
    dataset = build_dataset("cifar10", DataOptions(data_dir=tmp_path))
    rows, labels = batches[4]
    index = 3 * PER_BATCH + 1  # second image of data_batch_4
    assert int(dataset.train.labels[index]) == labels[1]
    expected = torch.from_numpy(rows[1].reshape(3, 32, 32))
    assert torch.equal(dataset.train.images[index], expected)
    assert [int(label) for label in dataset.test.labels] == [9, 8, 7, 6]
    assert torch.equal(dataset.test.images[0], torch.from_numpy(test_rows[0].reshape(3, 32, 32)))


def test_cifar10_items_are_normalized_tensors(tmp_path):
    write_cifar10(tmp_path)
    dataset = build_dataset("cifar10", DataOptions(data_dir=tmp_path, image_size=48))
    image, label = dataset.train[0]
    assert image.shape == (3, 48, 48)
    assert image.dtype == torch.float32
    assert isinstance(label, int)
    assert dataset.test[0][0].shape == (3, 48, 48)


def test_cifar100_bytes_keys_and_fine_labels(tmp_path):
    _, train_rows = write_cifar100(tmp_path)
    dataset = build_dataset("CIFAR100", DataOptions(data_dir=tmp_path))
    assert dataset.num_classes == 100
    assert [int(label) for label in dataset.train.labels] == [0, 99, 42, 7, 7]
    assert torch.equal(dataset.train.images[2], torch.from_numpy(train_rows[2].reshape(3, 32, 32)))
    assert dataset.classes[42] == "class42"


def test_cifar_missing_batch_named(tmp_path):
    folder, _, _ = write_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3 is missing"):
        build_dataset("cifar10", DataOptions(data_dir=tmp_path))


def test_cifar_absent_suggests_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(DataError) as error:
        build_dataset("cifar100", DataOptions(data_dir=tmp_path / "empty"))
    message = str(error.value)
    assert "--download" in message
    assert str(tmp_path / "empty" / "cifar-100-python") in message
    assert "cifar-100-python.tar.gz" in message


def test_cifar_pickle_with_code_rejected(tmp_path):
    folder, _, _ = write_cifar10(tmp_path)
    # A pickle that would call a function when loaded must not run it.
    write_pickle(folder / "test_batch", {"data": print, "labels": []})
    with pytest.raises(DataError, match="not a CIFAR python pickle"):
        build_dataset("cifar10", DataOptions(data_dir=tmp_path))


def test_cifar_wrong_row_width_rejected(tmp_path):
    folder, _, _ = write_cifar10(tmp_path)
    write_pickle(folder / "test_batch", {"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]})
    with pytest.raises(DataError, match="3072"):
        build_dataset("cifar10", DataOptions(data_dir=tmp_path))


def hf_cifar_splits():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
    from PIL import Image as PILImage

    features = Features({"img": Image(), "label": ClassLabel(names=[f"c{i}" for i in range(10)])})

    def split(labels):
        images = [PILImage.new("RGB", (32, 32), (25 * label, 0, 0)) for label in labels]
        return Dataset.from_dict({"img": images, "label": labels}, features=features)

    return DatasetDict({"train": split([3, 1, 4, 1, 5]), "test": split([9, 2])})


def test_cifar10_from_save_to_disk(tmp_path):
    hf_cifar_splits().save_to_disk(str(tmp_path / "cifar10"))
    dataset = build_dataset("cifar10", DataOptions(data_dir=tmp_path))
    assert len(dataset.train) == 5
    assert dataset.train.labels == [3, 1, 4, 1, 5]
    assert dataset.classes[4] == "c4"
    assert dataset.test[1][0].shape == (3, 32, 32)


def test_cifar10_from_hub_cache_parquet(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    snapshot = hub / "datasets--uoft-cs--cifar10" / "snapshots" / "0123abc" / "plain_text"
    snapshot.mkdir(parents=True)
    splits = hf_cifar_splits()
    splits["train"].to_parquet(str(snapshot / "train-00000-of-00001.parquet"))
    splits["test"].to_parquet(str(snapshot / "test-00000-of-00001.parquet"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    dataset = build_dataset("cifar10", DataOptions(data_dir=tmp_path / "data"))
    assert dataset.test.labels == [9, 2]
    assert dataset.classes[9] == "c9"
    image, label = dataset.test[0]
    assert image.shape == (3, 32, 32)
    assert label == 9
