"""Inception-v3 pool features (2048-d) for the standard FID, from a local torchvision weights file.

The file is torchvision's `inception_v3_google-0cc3c7bd.pth` (Inception_V3_Weights.IMAGENET1K_V1),
read with `torch.load(weights_only=True)`. Those weights were ported from TensorFlow but are not
the exact graph of the TensorFlow FID Inception used for published numbers, so values are close
to, not identical with, published FID.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlo_core.errors import ModelError

INCEPTION_SIZE = 299
EXPECTED_FILE = "inception_v3_google-0cc3c7bd.pth"


def load_inception(path: Path, device: torch.device) -> nn.Module:
    """Build torchvision's Inception-v3 with the weights in `path`, its classifier removed."""
    from torchvision.models import inception_v3

    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"Inception weights file {path} was not found. Pass --fid-inception "
                         f"with the path of torchvision's {EXPECTED_FILE}, or leave it out to "
                         "use the feature-space FID.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        raise ModelError(f"Could not load Inception weights from {path} with weights_only=True: "
                         f"{error}. Pass torchvision's {EXPECTED_FILE} (a plain state dict).") \
            from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    # transform_input=False: the network then takes images scaled to [-1, 1], which is what
    # torchvision's transform_input=True produces from ImageNet-normalized input.
    model = inception_v3(weights=None, aux_logits=True, transform_input=False,
                         init_weights=False)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise ModelError(f"{path} does not hold Inception-v3 weights in torchvision's layout: "
                         f"{str(error)[:300]}. Pass torchvision's {EXPECTED_FILE}.") from error
    model.fc = nn.Identity()
    return model.to(device).eval().requires_grad_(False)


def inception_extractor(path: Path, device: torch.device) -> Callable[[Tensor], Tensor]:
    """Return a function from float images [N, C, H, W] in [-1, 1] to features [N, 2048]."""
    model = load_inception(path, device)

    @torch.no_grad()
    def extract(images: Tensor) -> Tensor:
        images = images.to(device, torch.float32).clamp(-1, 1)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        images = F.interpolate(images, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear",
                               align_corners=False, antialias=images.shape[-1] > INCEPTION_SIZE)
        return model(images).double()

    return extract
