"""Disk reading and data shaping of the dashboard, without the Textual app."""

from __future__ import annotations

import json
import math
import shutil

from rlo_cli.tui.charts import LOSS, QUANTIZED_PERPLEXITY, build_chart_view, decimate
from rlo_cli.tui.format import duration_text, progress_text, sparkline
from rlo_cli.tui.history import RunHistory
from rlo_cli.tui.reader import JsonlFollower, RunsReader, TextTail
from tui_fixture_runs import make_quantize_run, make_train_run


def test_follower_partial_line_waits(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo')
    follower = JsonlFollower(path)
    first, _ = follower.read_new()
    assert [r["step"] for r in first] == [1]
    with open(path, "a") as handle:
        handle.write('ss": 0.4}\n')
    second, _ = follower.read_new()
    assert second == [{"step": 2, "loss": 0.4}]


def test_follower_counts_bad_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n[1, 2]\n{"step": 2}\n')
    follower = JsonlFollower(path)
    records, _ = follower.read_new()
    assert len(records) == 2
    assert follower.tail.bad_lines == 2


def test_follower_reports_truncation(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": i}) + "\n" for i in range(10)))
    follower = JsonlFollower(path)
    follower.read_new()
    path.write_text('{"step": 0}\n')
    records, reset = follower.read_new()
    assert reset
    assert records == [{"step": 0}]


def test_follower_missing_file(tmp_path):
    records, reset = JsonlFollower(tmp_path / "absent.jsonl").read_new()
    assert (records, reset) == ([], False)


def test_text_tail_starts_near_end(tmp_path):
    path = tmp_path / "events.log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    lines, _ = TextTail(path, start_tail_bytes=100).read_new()
    assert lines[-1] == "line 999"
    assert all(line.startswith("line ") for line in lines)  # no cut first line
    assert len(lines) < 20


def test_text_tail_partial_line_waits(tmp_path):
    path = tmp_path / "events.log"
    path.write_text("first\nsecond without newline")
    tail = TextTail(path)
    assert tail.read_new() == (["first"], False)
    with open(path, "a") as handle:
        handle.write(" yet\n")
    assert tail.read_new() == (["second without newline yet"], False)


def test_reader_sees_new_and_deleted_runs(tmp_path):
    reader = RunsReader(tmp_path)
    first = make_train_run(tmp_path, name="a", stamp="20240101-000000")
    assert [s.path for s in reader.scan()] == [first]
    second = make_train_run(tmp_path, name="b", stamp="20240102-000000")
    assert [s.path for s in reader.scan()] == [first, second]
    shutil.rmtree(first)
    assert [s.path for s in reader.scan()] == [second]


def test_reader_summary_fields(tmp_path):
    run = make_train_run(tmp_path, name="digits")
    summary = RunsReader(tmp_path).scan()[0]
    assert (summary.name, summary.command, summary.state) == ("digits", "train", "finished")
    assert summary.path == run


def test_reader_survives_deleted_run(tmp_path):
    run = make_train_run(tmp_path)
    reader = RunsReader(tmp_path)
    reader.read([run])
    shutil.rmtree(run)
    deltas = reader.read([run])
    assert all(delta.empty for delta in deltas)


def test_reader_first_read_reports_empty_run(tmp_path):
    run = make_train_run(tmp_path)
    (run / "metrics.jsonl").unlink()
    deltas = RunsReader(tmp_path).read([run])
    assert [delta.path for delta in deltas] == [run]


def test_history_labels_quantize_results(tmp_path):
    run = make_quantize_run(tmp_path)
    history = RunHistory(run)
    history.add_metrics(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())
    values = history.get_labelled(("eval",), "ppl")
    assert values["gptq w4"] == 31.08


def test_history_reset_drops_series(tmp_path):
    history = RunHistory(tmp_path)
    history.add_metrics([{"step": 1, "split": "train", "loss": 1.0}])
    history.add_metrics([{"step": 1, "split": "train", "loss": 2.0}], reset=True)
    assert history.get(("train",), "loss")[0][1].values == [2.0]


def _history(tmp_path, records):
    history = RunHistory(tmp_path)
    history.add_metrics(records)
    history.loaded = True
    return history


def test_chart_view_compare_prefixes_run_names(tmp_path):
    records = [{"step": 1, "split": "train", "loss": 1.0, "ce": 0.9}]
    view = build_chart_view(LOSS, [("a", _history(tmp_path, records)),
                                   ("b", _history(tmp_path, records))])
    assert [line.label for line in view.lines] == ["a: train loss", "b: train loss"]


def test_chart_view_single_run_keeps_ce(tmp_path):
    records = [{"step": 1, "split": "train", "loss": 1.0, "ce": 0.9}]
    view = build_chart_view(LOSS, [("a", _history(tmp_path, records))])
    assert [line.label for line in view.lines] == ["train loss", "train CE"]


def test_chart_view_log_scale_drops_non_positive(tmp_path):
    records = [{"step": i, "split": "train", "loss": value} for i, value in enumerate([0.0, 1.0, 2.0])]
    view = build_chart_view(LOSS, [("a", _history(tmp_path, records))], log_scale=True)
    assert view.lines[0].ys == (1.0, 2.0)


def test_chart_view_bars_for_quantize(tmp_path):
    records = [{"step": 0, "split": "eval", "method": "rtn", "wbits": 4, "ppl": 30.0}]
    view = build_chart_view(QUANTIZED_PERPLEXITY, [("q", _history(tmp_path, records))])
    assert view.bars == (("rtn w4", 30.0),)


def test_chart_view_message_without_data(tmp_path):
    view = build_chart_view(LOSS, [("a", _history(tmp_path, []))])
    assert view.message == "No loss values in metrics.jsonl yet."


def test_decimate_bounds_points_and_keeps_last():
    xs = list(range(10_001))
    small_xs, small_ys = decimate(xs, xs, max_points=400)
    assert len(small_xs) <= 401
    assert small_xs[-1] == 10_000


def test_progress_text_epochs():
    status = {"epoch": 3, "total_epochs": 4, "step": 30, "total_steps": 40}
    assert progress_text(status, "running", width=4) == "███· ep 3/4"


def test_duration_text_hours():
    assert duration_text(3725) == "1:02:05"


def test_sparkline_scales_to_range():
    assert sparkline([0.0, 50.0, 100.0, None], 10, 0.0, 100.0) == "▁▅█ "


def test_sparkline_constant_values():
    assert sparkline([math.pi] * 3, 10) == "▁▁▁"
