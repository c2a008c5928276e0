"""Quantized checkpoints: bit-packed codes in safetensors with a versioned JSON header.

File layout (safetensors, with the header as JSON under the metadata key `rlo_quant`):
- `<layer>.codes`: uint8, the layer's codes bit-packed at `bits` bits (see `packing`)
- `<layer>.step`: float16 per-row steps (min-max grid) or one float32 step (symmetric grid)
- `<layer>.zero`: uint8, integer zero points bit-packed at `bits` bits (min-max grid only;
  the symmetric grid's zero is (2^bits - 1) / 2)
- `<layer>.rescale`: float32 per-input scales (incoherence processing only)
The header records the format version, the base model and a fingerprint of its weights that
are not quantized. It also records the settings, the transform specs per layer and the
perplexities measured at save time. Weights that are not quantized (embeddings, norms,
biases, the head) are read from the base model, so the file contains only the quantized
layers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rlo_core import atomic
from rlo_core.errors import CheckpointError
from rlo_core.quant.packing import pack_codes, unpack_codes
from rlo_core.quant.quantized import QuantizedLinear

FORMAT = "rlo-quant"
FORMAT_VERSION = 1
HEADER_KEY = "rlo_quant"


@dataclass
class LoadedCheckpoint:
    header: dict[str, Any]
    records: list[QuantizedLinear]


def base_fingerprint(model: torch.nn.Module, quantized_names: set[str]) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of every tensor of the model's state
    dict except the quantized weights, to check that `--load` uses the same base model."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        if key.endswith(".weight") and key[: -len(".weight")] in quantized_names:
            continue
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{tuple(data.shape)}|{data.dtype}|".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def _tensors_of(record: QuantizedLinear) -> dict[str, torch.Tensor]:
    tensors = {f"{record.name}.codes": pack_codes(record.codes, record.bits)}
    if record.grid_kind == "minmax":
        tensors[f"{record.name}.step"] = record.step.to(torch.float16).contiguous()
        zero = record.zero.round().to(torch.int64)
        tensors[f"{record.name}.zero"] = pack_codes(zero, record.bits)
    else:
        tensors[f"{record.name}.step"] = record.step.to(torch.float32).contiguous()
    if record.rescale is not None:
        tensors[f"{record.name}.rescale"] = record.rescale.to(torch.float32).contiguous()
    return tensors


def _layer_header(record: QuantizedLinear) -> dict[str, Any]:
    return {"shape": list(record.shape), "bits": record.bits, "groupsize": record.groupsize,
            "grid": record.grid_kind, "step_shape": list(record.step.shape),
            "left": record.left, "right": record.right,
            "rescale": record.rescale is not None}


def save_checkpoint(path: str | Path, records: list[QuantizedLinear],
                    header: dict[str, Any]) -> int:
    """Write the records and `header` (plus format fields and layer specs) atomically.

    Returns the file size in bytes.
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for record in records:
        tensors.update(_tensors_of(record))
    document = {**header, "format": FORMAT, "format_version": FORMAT_VERSION,
                "layers": {record.name: _layer_header(record) for record in records}}
    data = save(tensors, metadata={HEADER_KEY: json.dumps(document, sort_keys=True)})
    path = Path(path)
    atomic.write_bytes(path, data)
    return path.stat().st_size


def _record_from(name: str, spec: dict[str, Any], tensors: dict[str, torch.Tensor],
                 path: Path) -> QuantizedLinear:
    try:
        rows, columns = (int(value) for value in spec["shape"])
        bits = int(spec["bits"])
        codes = unpack_codes(tensors[f"{name}.codes"], bits, rows * columns).reshape(rows, columns)
        step = tensors[f"{name}.step"].to(torch.float32).reshape(spec["step_shape"])
        if spec["grid"] == "minmax":
            zero = unpack_codes(tensors[f"{name}.zero"], bits, step.numel()).to(torch.float32)
            zero = zero.reshape(step.shape)
        else:
            zero = torch.full_like(step, (2 ** bits - 1) / 2)
        rescale = tensors[f"{name}.rescale"] if spec["rescale"] else None
    except (KeyError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"Quantized checkpoint {path} is corrupt: layer {name} is "
                              f"incomplete or malformed ({error}). Save it again.") from error
    return QuantizedLinear(name, (rows, columns), bits, codes, step, zero, int(spec["groupsize"]),
                           spec["grid"], rescale, spec.get("left"), spec.get("right"))


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Read a checkpoint written by `save_checkpoint`; raises CheckpointError when it is
    missing, not an rlo quantized checkpoint, or of a newer format version."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Quantized checkpoint {path} was not found. Pass the file "
                              "written by 'rlo quantize ... --save PATH'.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error}).") from error
    if HEADER_KEY not in metadata:
        raise CheckpointError(f"{path} is a safetensors file without an rlo quantization "
                              "header: it was not written by 'rlo quantize --save'.")
    header = json.loads(metadata[HEADER_KEY])
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {header.get('format')!r}, expected {FORMAT!r}.")
    version = int(header.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} uses format version {version}, newer than the version "
                              f"{FORMAT_VERSION} this rlo reads. Upgrade rlo.")
    records = [_record_from(name, spec, tensors, path) for name, spec in header["layers"].items()]
    return LoadedCheckpoint(header, records)


def fp16_bytes(records: list[QuantizedLinear]) -> int:
    """Bytes the quantized weights would take in float16."""
    return sum(2 * rows * columns for rows, columns in (record.shape for record in records))



def apply_records(model: torch.nn.Module, records: list[QuantizedLinear],
                  device: torch.device | str) -> None:
    """Set each quantized layer's weight to its reconstruction (computed on `device`)."""
    for record in records:
        try:
            module = model.get_submodule(record.name)
        except AttributeError as error:
            raise CheckpointError(f"The model has no layer {record.name} from the quantized "
                                  "checkpoint: it was saved from a different architecture. "
                                  "Pass the base model used at save time.") from error
        if tuple(module.weight.shape) != tuple(record.shape):
            raise CheckpointError(f"Layer {record.name} has shape {tuple(module.weight.shape)} "
                                  f"in the model but {tuple(record.shape)} in the checkpoint. "
                                  "Pass the base model used at save time.")
        weight = record.reconstruct(device)
        module.weight.data.copy_(weight.to(module.weight.device, module.weight.dtype))
