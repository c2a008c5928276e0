"""Bit-packing of codes and the quantized checkpoint format."""

import json

import pytest
import torch

from rlo_core.errors import CheckpointError
from rlo_core.quant.checkpoint import HEADER_KEY, load_checkpoint, save_checkpoint
from rlo_core.quant.linear import RoundingSettings, quantize_linear
from rlo_core.quant.packing import pack_codes, packed_size, unpack_codes


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("count", [1, 8, 37, 1000])
def test_pack_round_trip(bits, count):
    codes = torch.randint(0, 2 ** bits, (count,), generator=torch.Generator().manual_seed(bits))
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == packed_size(count, bits)
    assert torch.equal(unpack_codes(packed, bits, count), codes.to(torch.uint8))


def test_three_bit_layout():
    """Eight 3-bit codes fill three bytes, code i at bits 3i..3i+2 (little-endian)."""
    packed = pack_codes(torch.tensor([1, 0, 0, 0, 0, 0, 0, 7]), 3)
    assert packed.tolist() == [1, 0, 0b11100000]


def test_pack_rejects_out_of_range():
    with pytest.raises(ValueError):
        pack_codes(torch.tensor([4]), 2)


def quantized_records(incoherence, bits, groupsize=None):
    generator = torch.Generator().manual_seed(0)
    records = []
    for index, (rows, columns) in enumerate([(24, 32), (40, 24)]):
        weight = torch.randn(rows, columns, generator=generator)
        inputs = torch.randn(64, columns, generator=generator, dtype=torch.float64)
        settings = RoundingSettings(method="ldlq", bits=bits, incoherence=incoherence,
                                    groupsize=groupsize)
        records.append(quantize_linear(f"layers.{index}.proj", weight, inputs.T @ inputs / 64,
                                       settings))
    return records


@pytest.mark.parametrize("incoherence, bits, groupsize", [(False, 4, None), (False, 3, 8),
                                                         (True, 2, None)])
def test_checkpoint_round_trip_is_exact(tmp_path, incoherence, bits, groupsize):
    results = quantized_records(incoherence, bits, groupsize)
    path = tmp_path / "q.safetensors"
    save_checkpoint(path, [result.record for result in results], {"model": "m"})
    loaded = load_checkpoint(path)
    assert loaded.header["model"] == "m"
    for result, record in zip(results, loaded.records):
        assert torch.equal(record.reconstruct(), result.weight)


def test_checkpoint_header_is_versioned(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "q.safetensors"
    save_checkpoint(path, [r.record for r in quantized_records(False, 2)], {})
    with safe_open(str(path), framework="pt") as handle:
        header = json.loads(handle.metadata()[HEADER_KEY])
    assert header["format"] == "rlo-quant"
    assert header["format_version"] == 1


def test_missing_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_foreign_safetensors_error(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="header"):
        load_checkpoint(path)


def test_truncated_checkpoint_error(tmp_path):
    path = tmp_path / "q.safetensors"
    save_checkpoint(path, [r.record for r in quantized_records(False, 2)], {})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
