"""Network snapshots in safetensors: G, D and the EMA generator, plus the network spec.

A snapshot contains tensors only (no pickled code), named `G.<param>`, `D.<param>` and
`G_ema.<param>`. Its metadata stores the `NetworkSpec` as JSON and facts about the run
(kimg, loss, k), so `load_snapshot` can rebuild the networks without the run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rlo_core import atomic
from rlo_core.errors import CheckpointError
from rlo_core.gan.networks import NetworkSpec, build_discriminator, build_generator

FORMAT = "rlo-gan-snapshot"
FORMAT_VERSION = "1"
PARTS = ("G", "D", "G_ema")


@dataclass
class Snapshot:
    spec: NetworkSpec
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    metadata: dict[str, str]


def snapshot_name(kimg: int) -> str:
    return f"network-snapshot-{kimg:06d}.safetensors"


def save_snapshot(path: Path, *, G: nn.Module, D: nn.Module, G_ema: nn.Module,
                  spec: NetworkSpec, info: dict[str, object] | None = None) -> Path:
    """Write the three networks to `path` atomically."""
    from safetensors.torch import save

    tensors = {}
    for part, module in zip(PARTS, (G, D, G_ema)):
        for key, value in module.state_dict().items():
            tensors[f"{part}.{key}"] = value.detach().cpu().contiguous().clone()
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "spec": json.dumps(spec.to_dict())}
    metadata.update({key: str(value) for key, value in (info or {}).items()})
    atomic.write_bytes(Path(path), save(tensors, metadata=metadata))
    return Path(path)


def load_snapshot(path: Path, device: torch.device | str = "cpu") -> Snapshot:
    """Rebuild G, D and G_ema from a snapshot; the networks are in eval mode on `device`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Network snapshot {path} was not found. Pass a "
                              "network-snapshot-NNNNNN.safetensors file from a 'rlo gan' run "
                              "directory.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"Could not read network snapshot {path}: {error}. The file is "
                              "not a safetensors file or is truncated.") from error
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not an 'rlo gan' network "
                              "snapshot (its metadata has no format "
                              f"'{FORMAT}'). Pass a network-snapshot-NNNNNN.safetensors file.")
    try:
        spec = NetworkSpec.from_dict(json.loads(metadata["spec"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"Network snapshot {path} has an invalid spec in its metadata: "
                              f"{error}.") from error
    modules = {"G": build_generator(spec), "D": build_discriminator(spec),
               "G_ema": build_generator(spec)}
    for part, module in modules.items():
        prefix = f"{part}."
        state = {key[len(prefix):]: value for key, value in tensors.items()
                 if key.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as error:
            raise CheckpointError(f"Network snapshot {path} does not match its own spec "
                                  f"({part}): {error}") from error
        module.to(device).eval().requires_grad_(False)
    return Snapshot(spec, modules["G"], modules["D"], modules["G_ema"], metadata)
