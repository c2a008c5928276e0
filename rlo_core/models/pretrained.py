"""Pretrained timm ViT weights from a local file, a folder, or the Hugging Face cache.

Nothing is downloaded: a machine without the weights gets a ModelError that lists where they
were looked for and how to provide them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

from torch import nn

from rlo_core.errors import ModelError
from rlo_core.models.registry import NetOptions

log = logging.getLogger(__name__)

# Within a folder, the first pattern that matches wins.
WEIGHT_PATTERNS = ("model.safetensors", "pytorch_model.bin", "*.safetensors", "*.pth", "*.pt",
                   "*.bin", "*.npz")


def hub_cache_dirs() -> list[Path]:
    """Return the Hugging Face hub cache folders, in the order huggingface_hub resolves them."""
    folders = []
    if os.environ.get("HF_HUB_CACHE"):
        folders.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        folders.append(Path(os.environ["HF_HOME"]) / "hub")
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folders.append(cache_home / "huggingface" / "hub")
    return list(dict.fromkeys(path.expanduser() for path in folders))


def weights_in_folder(folder: Path) -> Optional[Path]:
    for pattern in WEIGHT_PATTERNS:
        matches = sorted(path for path in folder.rglob(pattern) if path.is_file())
        if matches:
            return matches[0]
    return None


def hub_repo_folders(hub: Path, model_name: str) -> list[Path]:
    """Return the cached timm repositories of `model_name`, timm's default tag first."""
    import timm

    default_id = (timm.models.get_pretrained_cfg(model_name).hf_hub_id or "").replace("/", "--")
    folders = sorted(hub.glob(f"models--timm--{model_name}.*")) + sorted(
        hub.glob(f"models--timm--{model_name}"))
    return sorted(folders, key=lambda path: path.name != f"models--{default_id}")


def find_weights(model_name: str, pretrained: Optional[str]) -> Path:
    if pretrained:
        path = Path(pretrained).expanduser()
        if path.is_file():
            return path
        if path.is_dir():
            found = weights_in_folder(path)
            if found is not None:
                return found
            raise ModelError(
                f"--pretrained {path} is a folder without a weights file. Expected "
                f"{', '.join(WEIGHT_PATTERNS)} in it or below it (a Hugging Face cache folder "
                f"such as models--timm--{model_name}.augreg_in21k_ft_in1k works).")
        raise ModelError(f"--pretrained {path}: no such file or folder. Pass the path of the "
                         f"{model_name} weights (.safetensors, .pth, .bin or .npz) or of a "
                         "folder that contains them.")

    searched = []
    for hub in hub_cache_dirs():
        searched.append(str(hub / f"models--timm--{model_name}*"))
        for repo in hub_repo_folders(hub, model_name):
            found = weights_in_folder(repo / "snapshots")
            if found is not None:
                return found
    raise ModelError(
        f"No pretrained weights for timm's {model_name} were found, and rlo does not download "
        f"them. Looked in: {'; '.join(searched)}. On a machine with internet, run "
        f"`python -c \"import timm; timm.create_model('{model_name}', pretrained=True)\"` and "
        f"copy the folder it creates under ~/.cache/huggingface/hub to this machine's cache "
        f"(or set HF_HUB_CACHE to it), or pass --pretrained PATH with a model.safetensors, "
        f".pth or .npz file.")


def read_state_dict(path: Path) -> dict:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt files raise many types (OSError, pickle, safetensors)
        raise ModelError(f"Could not read pretrained weights {path}: {error}. Pass a "
                         ".safetensors file, or a .pth/.bin file holding only tensors.") from error
    if not isinstance(state, dict):
        raise ModelError(f"Pretrained weights {path} hold a {type(state).__name__}, not a "
                         "state dict of tensors.")
    return state


def load_vit_weights(model: nn.Module, model_name: str, path: Path) -> None:
    from timm.models.vision_transformer import checkpoint_filter_fn

    if path.suffix == ".npz":
        # timm reads the original JAX checkpoints itself; it skips a head of another size.
        model.load_pretrained(str(path))
        return
    # The filter converts other checkpoint layouts and resamples the position embedding to
    # the model's patch grid when --image-size differs from the pretraining size.
    state = checkpoint_filter_fn(read_state_dict(path), model)
    own = model.state_dict()
    mismatched = [key for key in state
                  if key in own and state[key].shape != own[key].shape]
    for key in [key for key in mismatched if key.startswith("head.")]:
        del state[key]  # the classifier of the pretraining classes, replaced by a new head
    mismatched = [key for key in mismatched if not key.startswith("head.")]
    missing, unexpected = [], []
    if not mismatched:
        missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith("head.")]
    if mismatched or missing or unexpected:
        raise ModelError(
            f"The weights in {path} do not fit timm's {model_name}: {len(mismatched)} tensors "
            f"of another shape (first: {mismatched[:3]}), {len(missing)} missing (first: "
            f"{missing[:3]}), {len(unexpected)} unexpected (first: {unexpected[:3]}). Pass the "
            f"weights of {model_name} itself.")


def build_pretrained_timm_vit(model_name: str, options: NetOptions) -> nn.Module:
    """Build timm's `model_name` with a new head for `options.num_classes` and load its weights."""
    import timm

    # Look for the weights first, so a machine without them fails before the slow build.
    path = find_weights(model_name, options.pretrained) if options.load_pretrained else None
    model = timm.create_model(model_name, pretrained=False, num_classes=options.num_classes,
                              img_size=options.image_size)
    if path is None:
        return model
    load_vit_weights(model, model_name, path)
    log.info("Loaded %s weights from %s; the %d-class head starts from random values.",
             model_name, path, options.num_classes)
    return model
