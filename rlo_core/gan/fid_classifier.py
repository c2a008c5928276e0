"""A small classifier trained on the real images, whose features define the feature-space FID.

With class labels (digits, or an image folder with class subfolders) it learns the labels.
Without labels it learns to tell which of four rotations (0, 90, 180, 270 degrees) was applied
to an image, a self-supervised task whose features still describe shape. Images are resized to
32x32 first. The features are the 128-d penultimate activations. The trained classifier is
cached in the run directory as safetensors, so a resumed run measures with the same features.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlo_core import atomic
from rlo_core.gan.data import GanData, to_float

log = logging.getLogger(__name__)

INPUT_SIZE = 32
FEATURE_DIM = 128
BATCH = 64
HELD_OUT_FRACTION = 0.1
MIN_USEFUL_ACCURACY = 0.5  # below it the feature-space FID is logged as unreliable


class FeatureClassifier(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b),
                                 nn.ReLU(inplace=True))

        self.body = nn.Sequential(
            block(in_channels, 16), nn.MaxPool2d(2),
            block(16, 32), block(32, 32), nn.MaxPool2d(2),
            block(32, 64), block(64, 64), nn.MaxPool2d(2),
            block(64, 128),
            nn.Flatten(), nn.Linear(128 * 16, FEATURE_DIM), nn.ReLU(inplace=True))
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, images: Tensor) -> Tensor:
        if images.shape[-1] != INPUT_SIZE or images.shape[-2] != INPUT_SIZE:
            images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                   align_corners=False, antialias=True)
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


@dataclass
class ClassifierInfo:
    task: str  # "labels" or "rotation"
    num_classes: int
    in_channels: int
    held_out_accuracy: float
    steps: int


def _task_batch(images: Tensor, labels: Tensor | None, indices: Tensor,
                generator: torch.Generator) -> tuple[Tensor, Tensor]:
    x = to_float(images[indices])
    if labels is not None:
        return x, labels[indices]
    turns = torch.randint(0, 4, (len(indices),), generator=generator)
    rotated = torch.stack([torch.rot90(x, quarter, dims=(2, 3)) for quarter in range(4)])
    return rotated[turns, torch.arange(len(indices))], turns


def train_feature_classifier(data: GanData, *, steps: int, seed: int,
                             device: torch.device) -> tuple[FeatureClassifier, ClassifierInfo]:
    """Train on 90% of the reals, report the accuracy on the other 10%, and return the
    classifier on `device`.

    Training runs on the CPU with one thread whatever `device` is. The reduction order of
    CPU kernels depends on the thread count (and of CUDA kernels on the GPU model). A few
    hundred steps turn those rounding differences into another feature space: with 1 and 2
    threads, the same data and seed gave an initial FID of 236.0 and 209.7. One thread makes
    the classifier, and so the FID scale, the same on every machine with the same torch
    version. It costs about 12 s for 200 steps on one core of the development machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, info = _train_on_cpu(data, steps=steps, seed=seed)
    finally:
        torch.set_num_threads(threads)
    return model.to(device), info


def _train_on_cpu(data: GanData, *, steps: int, seed: int
                  ) -> tuple[FeatureClassifier, ClassifierInfo]:
    device = torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    task = "labels" if data.labels is not None and len(data.class_names) >= 2 else "rotation"
    labels = data.labels if task == "labels" else None
    num_classes = len(data.class_names) if task == "labels" else 4
    order = torch.randperm(len(data), generator=generator)
    held_out = max(1, int(len(data) * HELD_OUT_FRACTION))
    test_idx, train_idx = order[:held_out], order[held_out:]
    if len(train_idx) == 0:
        train_idx = test_idx

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureClassifier(data.img_channels, num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    model.train()
    for _ in range(steps):
        pick = train_idx[torch.randint(0, len(train_idx), (BATCH,), generator=generator)]
        x, y = _task_batch(data.images, labels, pick, generator)
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test_idx), BATCH):
            x, y = _task_batch(data.images, labels, test_idx[start:start + BATCH], generator)
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
    accuracy = correct / len(test_idx)
    info = ClassifierInfo(task, num_classes, data.img_channels, accuracy, steps)
    log.info("FID feature classifier (%s task, %d classes): %.1f%% held-out accuracy after %d "
             "steps.", task, num_classes, 100 * accuracy, steps)
    if accuracy < MIN_USEFUL_ACCURACY:
        log.warning("The FID feature classifier reached only %.1f%% held-out accuracy, so its "
                    "features may not tell good samples from bad ones. Raise "
                    "--fid-classifier-steps.", 100 * accuracy)
    return model.requires_grad_(False), info


def save_classifier(path: Path, model: FeatureClassifier, info: ClassifierInfo,
                    data_key: str) -> None:
    from safetensors.torch import save

    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    metadata = {"info": json.dumps(info.__dict__), "data": data_key}
    atomic.write_bytes(path, save(tensors, metadata=metadata))


def load_classifier(path: Path, data_key: str,
                    device: torch.device) -> tuple[FeatureClassifier, ClassifierInfo] | None:
    """Load a cached classifier; None when absent or trained on other data (`data_key` names the
    data set, resolution and image count)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("data") != data_key:
        log.info("Ignoring cached FID classifier %s: it was trained on %s, not %s.", path,
                 metadata.get("data"), data_key)
        return None
    info = ClassifierInfo(**json.loads(metadata["info"]))
    model = FeatureClassifier(info.in_channels, info.num_classes)
    model.load_state_dict(load_file(str(path)))
    return model.to(device).eval().requires_grad_(False), info
