"""Bit-packing of b-bit codes (1 <= b <= 8) into bytes, little-endian within each word.

Eight codes of b bits fill exactly b bytes, so codes are packed eight at a time: code i of
a word occupies bits [b*i, b*(i+1)) of a 64-bit integer whose low b bytes are stored.
The code count is padded to a multiple of 8 with zeros; `unpack_codes` drops the padding.
"""

from __future__ import annotations

import torch


def packed_size(count: int, bits: int) -> int:
    """Bytes used by `count` codes of `bits` bits."""
    return -(-count // 8) * bits


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer codes in [0, 2^bits) into a flat uint8 tensor of `packed_size` bytes."""
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be between 1 and 8, got {bits}")
    flat = codes.reshape(-1).to(torch.int64)
    if flat.numel() and (flat.min() < 0 or flat.max() >= 2 ** bits):
        raise ValueError(f"codes out of range for {bits} bits")
    padding = (-flat.numel()) % 8
    words = torch.nn.functional.pad(flat, (0, padding)).reshape(-1, 8)
    shifts = torch.arange(8, device=flat.device, dtype=torch.int64) * bits
    packed = (words << shifts).sum(dim=1)
    byte_shifts = torch.arange(bits, device=flat.device, dtype=torch.int64) * 8
    return ((packed[:, None] >> byte_shifts) & 0xFF).to(torch.uint8).reshape(-1)


def unpack_codes(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of `pack_codes`: the first `count` codes as uint8."""
    if packed.numel() != packed_size(count, bits):
        raise ValueError(f"expected {packed_size(count, bits)} bytes for {count} codes of "
                         f"{bits} bits, got {packed.numel()}")
    rows = packed.to(torch.int64).reshape(-1, bits)
    byte_shifts = torch.arange(bits, device=packed.device, dtype=torch.int64) * 8
    words = (rows << byte_shifts).sum(dim=1)
    shifts = torch.arange(8, device=packed.device, dtype=torch.int64) * bits
    codes = (words[:, None] >> shifts) & (2 ** bits - 1)
    return codes.reshape(-1)[:count].to(torch.uint8)
