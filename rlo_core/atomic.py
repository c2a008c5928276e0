"""Atomic file writes: write to a temporary file in the same folder, then rename.

A reader, or a process killed mid-write, finds either the old file or the new one, never a
truncated mix, because `os.replace` is atomic on POSIX and Windows file systems.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _write_via_temp(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _write_via_temp(path, lambda handle: handle.write(text), "w")


def write_bytes(path: Path, data: bytes) -> None:
    _write_via_temp(path, lambda handle: handle.write(data), "wb")


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def torch_save(obj: Any, path: Path) -> None:
    """Save `obj` with `torch.save` atomically."""
    import torch

    _write_via_temp(path, lambda handle: torch.save(obj, handle), "wb")


def write_folder(folder: Path, fill: Callable[[Path], None]) -> Path:
    """Build a folder atomically: `fill` writes into a staging folder beside `folder`, which
    then replaces `folder`. A failure in `fill` leaves any existing `folder` untouched."""
    import shutil

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        fill(staging)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            os.replace(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
