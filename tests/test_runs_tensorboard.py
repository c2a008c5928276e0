"""Optional TensorBoard event files: a log line and no-op without the package, scalars with it."""

from __future__ import annotations

import logging
import sys

import pytest

from rlo_core.runs.tensorboard import TensorBoardWriter, open_tensorboard


def test_missing_package_logs_and_writes_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    with caplog.at_level(logging.WARNING, logger="rlo_core.runs.tensorboard"):
        writer = open_tensorboard(tmp_path, enabled=True)
    assert writer.available is False
    assert "pip install tensorboard" in caplog.text
    assert writer.log(1, "train", {"loss": 1.0}) == 0
    assert not (tmp_path / "tensorboard").exists()
    writer.close()


def test_disabled_writer_is_silent(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="rlo_core.runs.tensorboard"):
        writer = TensorBoardWriter(tmp_path / "tb", enabled=False)
    assert writer.available is False
    assert caplog.text == ""
    assert writer.log(1, "val", {"acc": 0.5}) == 0


def test_installed_package_writes_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with open_tensorboard(tmp_path, enabled=True) as writer:
        assert writer.available is True
        written = writer.log(5, "val", {"acc": 0.75, "loss": 0.5, "epoch": 1, "split": "val",
                                        "note": "text", "bad": float("nan")})
        writer.log(10, "val", {"acc": 0.8})
    assert written == 2
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["val/acc", "val/loss"]
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("val/acc")] == [(5, 0.75), (10, 0.8)]
