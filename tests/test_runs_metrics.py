"""metrics.jsonl: writer, incremental reader (partial lines, bad lines, truncation), CSV."""

from __future__ import annotations

import csv
import io
import json
import os

from rlo_core.runs.metrics import (JsonlTail, MetricsWriter, read_jsonl, records_to_csv,
                                   truncate_after_step)


def append(path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def test_partial_last_line_waits_for_newline(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append(path, b'{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')
    tail = JsonlTail(path)
    assert [r["step"] for r in tail.read_new()] == [1, 2]
    assert tail.bad_lines == 0

    append(path, b'ss": 1.2}')
    assert tail.read_new() == []

    append(path, b'\n')
    assert tail.read_new() == [{"step": 3, "loss": 1.2}]
    assert tail.bad_lines == 0


def test_read_new_returns_only_new_records(tmp_path):
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    tail = JsonlTail(path)
    writer.log(step=1, split="train", loss=1.0)
    assert len(tail.read_new()) == 1
    writer.log(step=2, split="train", loss=0.5)
    writer.log(step=2, split="val", acc=0.7)
    assert [r["split"] for r in tail.read_new()] == ["train", "val"]
    assert tail.read_new() == []
    writer.close()


def test_bad_lines_counted_and_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append(path, b'{"step": 1}\nnot json\n[1, 2]\n\xff\xfe{"step": 2}\n\n{"step": 3}\n')
    tail = JsonlTail(path)
    assert [r["step"] for r in tail.read_new()] == [1, 3]
    assert tail.bad_lines == 3


def test_truncated_file_read_from_start(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append(path, b'{"step": 1}\n{"step": 2}\n{"step": 3}\n')
    tail = JsonlTail(path)
    assert len(tail.read_new()) == 3
    with open(path, "wb") as handle:
        handle.write(b'{"step": 9}\n')
    assert tail.read_new() == [{"step": 9}]


def test_replaced_file_read_from_start(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append(path, b'{"step": 1}\n')
    tail = JsonlTail(path)
    tail.read_new()
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(b'{"step": 1}\n{"step": 2}\n{"step": 3}\n')
    os.replace(replacement, path)  # larger than before, so only the inode shows the change
    assert [r["step"] for r in tail.read_new()] == [1, 2, 3]


def test_missing_file_gives_no_records(tmp_path):
    tail = JsonlTail(tmp_path / "absent.jsonl")
    assert tail.read_new() == []


def test_read_jsonl_skips_incomplete_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append(path, b'{"step": 1}\n{"step": 2')
    assert read_jsonl(path) == [{"step": 1}]


def test_writer_converts_non_finite_to_null(tmp_path):
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    writer.log(step=4, split="train", epoch=0.5, loss=float("nan"), acc=float("inf"), ce=0.25)
    writer.close()
    record = json.loads(path.read_text())
    assert record["loss"] is None
    assert record["acc"] is None
    assert record["ce"] == 0.25
    assert record["epoch"] == 0.5
    assert isinstance(record["time"], float)


def test_writer_unwraps_scalar_objects(tmp_path):
    import numpy as np

    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    writer.log(step=1, split="val", acc=np.float32(0.5), count=np.int64(7))
    writer.close()
    record = json.loads(path.read_text())
    assert record["acc"] == 0.5
    assert record["count"] == 7


def test_truncate_after_step_drops_later_records(tmp_path):
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    for step in range(1, 7):
        writer.log(step=step, split="train", loss=1.0 / step)
    writer.close()
    removed = truncate_after_step(path, 4)
    assert removed == 2
    assert [r["step"] for r in read_jsonl(path)] == [1, 2, 3, 4]


def test_records_to_csv_has_union_of_columns():
    records = [
        {"time": 1.0, "step": 1, "epoch": 0.1, "split": "train", "loss": 2.0, "lr": 0.001},
        {"time": 2.0, "step": 1, "epoch": 1, "split": "val", "acc": 0.5, "loss": None},
    ]
    rows = list(csv.reader(io.StringIO(records_to_csv(records))))
    assert rows[0] == ["time", "step", "epoch", "split", "loss", "lr", "acc"]
    assert rows[1] == ["1.0", "1", "0.1", "train", "2.0", "0.001", ""]
    assert rows[2] == ["2.0", "1", "1", "val", "", "", "0.5"]
