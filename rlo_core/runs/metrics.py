"""JSON-lines metric files: one object per line, flushed per line, tailed by byte offset."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rlo_core import atomic


def _clean(value: Any) -> Any:
    """Convert tensors and numpy scalars to plain numbers, and NaN/inf to None (valid JSON)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsWriter:
    """Append metric records to a JSON-lines file, flushing each line so readers see it at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        # default=str keeps a stray Path or enum from failing the whole record.
        line = json.dumps({key: _clean(value) for key, value in record.items()}, default=str)
        self._handle.write(line + "\n")
        self._handle.flush()

    def log(self, *, step: int, split: str, epoch: float | None = None, **values: Any) -> None:
        self.write({"time": time.time(), "step": step, "epoch": epoch, "split": split, **values})

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


@dataclass
class JsonlTail:
    """Incremental reader of a JSON-lines file that another process is appending to.

    Each `read_new()` reads only the bytes added since the last call. A last line without its
    newline is left for the next call; a line that is not valid JSON is counted in `bad_lines`
    and skipped. A file that shrank (truncated or replaced) is read again from the start.
    """

    path: Path
    offset: int = 0
    bad_lines: int = 0
    _inode: int | None = field(default=None, repr=False)

    def read_new(self) -> list[dict[str, Any]]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return []
        if stat.st_size < self.offset or (self._inode is not None and stat.st_ino != self._inode):
            self.offset = 0
        self._inode = stat.st_ino
        if stat.st_size == self.offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(stat.st_size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        records = []
        for line in chunk[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not UTF-8
                self.bad_lines += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                self.bad_lines += 1
        return records


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read every complete, valid record of a JSON-lines file (an incomplete last line is skipped)."""
    return JsonlTail(Path(path)).read_new()


def truncate_after_step(path: Path, max_step: int) -> int:
    """Drop records with `step > max_step`, so a resumed run does not log those steps twice.

    Returns the number of records removed. The file is rewritten atomically.
    """
    path = Path(path)
    if not path.exists():
        return 0
    records = read_jsonl(path)
    kept = [r for r in records if not isinstance(r.get("step"), int) or r["step"] <= max_step]
    removed = len(records) - len(kept)
    atomic.write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
    return removed


def series(records: Iterable[dict[str, Any]], metric: str, split: str | None = None,
           x: str = "step") -> tuple[list[float], list[float]]:
    """Extract (x, y) lists of one metric, optionally restricted to one split."""
    xs, ys = [], []
    for record in records:
        if split is not None and record.get("split") != split:
            continue
        value, position = record.get(metric), record.get(x)
        if isinstance(value, (int, float)) and isinstance(position, (int, float)):
            xs.append(float(position))
            ys.append(float(value))
    return xs, ys


def records_to_csv(records: list[dict[str, Any]]) -> str:
    """Render metric records as CSV: time, step, epoch, split, then every metric in order of
    first appearance. A record without a metric leaves its cell empty."""
    import csv
    import io

    columns: dict[str, None] = dict.fromkeys(("time", "step", "epoch", "split"))
    for record in records:
        columns.update(dict.fromkeys(record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), restval="", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if value is None else value for key, value in record.items()})
    return buffer.getvalue()
