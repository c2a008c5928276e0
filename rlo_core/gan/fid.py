"""Frechet distance between feature statistics of real and generated images (FID).

Two feature spaces: "inception" (torchvision's Inception-v3 pool features, when a weights file
is given) and "feature" (a small classifier trained on the real data of the run). Feature-space
values compare only runs on the same data with the same cached classifier, never published
FID. Every record, log line and summary that shows one carries `FidMetric.note`, which states
this.
The real statistics and the classifier are cached in the run directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from rlo_core import atomic
from rlo_core.gan.data import GanData, to_float

log = logging.getLogger(__name__)

FEATURE_NOTE = ("feature-space FID from a classifier trained on this data set, not comparable "
                "to published FID")
INCEPTION_NOTE = ("Inception FID with torchvision's Inception-v3 weights, close to but not "
                  "identical with published FID, which uses the TensorFlow Inception graph")
EXTRACT_BATCH = 64


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)) for Gaussians N(mu, S).

    tr((S1 S2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric matrix S1^(1/2) S2 S1^(1/2), which has the same spectrum and avoids complex
    round-off from a general matrix square root.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    values, vectors = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ sigma2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)


def statistics(features: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of features [N, D]."""
    array = features.double().cpu().numpy()
    return array.mean(axis=0), np.cov(array, rowvar=False)


@dataclass
class FidMetric:
    kind: str  # "inception" or "feature"
    note: str
    extract: Callable[[Tensor], Tensor]  # float images in [-1, 1] -> features [N, D]
    real_mu: np.ndarray
    real_sigma: np.ndarray
    real_count: int

    @torch.no_grad()
    def compute(self, G: nn.Module, *, num_samples: int, device: torch.device,
                seed: int) -> float:
        """FID of `num_samples` images from G (latents and noise drawn from `seed`)."""
        generator = torch.Generator(device).manual_seed(seed)
        features = []
        for start in range(0, num_samples, EXTRACT_BATCH):
            count = min(EXTRACT_BATCH, num_samples - start)
            z = torch.randn(count, G.z_dim, device=device, generator=generator)
            images = G(z, noise_mode="random", generator=generator)
            features.append(self.extract(images.float()).cpu())
        mu, sigma = statistics(torch.cat(features))
        return frechet_distance(mu, sigma, self.real_mu, self.real_sigma)


def data_key(data: GanData) -> str:
    return f"{data.name}@{data.resolution}px:{len(data)}"


def _real_statistics(path: Path, key: str, data: GanData,
                     extract: Callable[[Tensor], Tensor]) -> tuple[np.ndarray, np.ndarray]:
    from safetensors import safe_open
    from safetensors.torch import load_file, save

    if path.is_file():
        with safe_open(str(path), framework="pt") as handle:
            cached_key = (handle.metadata() or {}).get("data")
        if cached_key == key:
            tensors = load_file(str(path))
            return tensors["mu"].numpy(), tensors["sigma"].numpy()
        log.info("Recomputing %s: it contains statistics of %s, not %s.", path, cached_key, key)
    features = []
    with torch.no_grad():
        for start in range(0, len(data), EXTRACT_BATCH):
            features.append(extract(to_float(data.images[start:start + EXTRACT_BATCH])).cpu())
    mu, sigma = statistics(torch.cat(features))
    atomic.write_bytes(path, save({"mu": torch.from_numpy(mu), "sigma": torch.from_numpy(sigma)},
                                  metadata={"data": key}))
    return mu, sigma


def build_fid_metric(*, data: GanData, run_dir: Path, device: torch.device,
                     inception_path: str | None, classifier_steps: int, seed: int) -> FidMetric:
    """Prepare the FID of a run: load or train the feature extractor and cache real statistics."""
    key = data_key(data)
    if inception_path:
        from rlo_core.gan.fid_inception import inception_extractor

        weights = Path(inception_path).expanduser()
        extract = inception_extractor(weights, device)
        kind, note = "inception", INCEPTION_NOTE
        key += f"|inception:{weights.name}:{weights.stat().st_size}"
    else:
        from rlo_core.gan.fid_classifier import (
            load_classifier,
            save_classifier,
            train_feature_classifier,
        )

        cache = Path(run_dir) / "fid-classifier.safetensors"
        loaded = load_classifier(cache, key, device)
        if loaded is None:
            model, info = train_feature_classifier(data, steps=classifier_steps, seed=seed,
                                                   device=device)
            save_classifier(cache, model, info, key)
        else:
            model, info = loaded
            log.info("Loaded the FID feature classifier from %s (%.1f%% held-out accuracy).",
                     cache, 100 * info.held_out_accuracy)

        def extract(images: Tensor) -> Tensor:
            return model.features(images.to(device, torch.float32)).double()

        kind, note = "feature", FEATURE_NOTE
    mu, sigma = _real_statistics(Path(run_dir) / f"fid-reals-{kind}.safetensors", key, data,
                                 extract)
    return FidMetric(kind, note, extract, mu, sigma, len(data))
