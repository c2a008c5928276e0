"""The dashboard app driven through Textual's Pilot on fixture run directories."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlo_cli.tui import DashboardApp
from rlo_cli.tui.local import LocalSampler
from rlo_cli.tui.widgets.chart import ChartPanel, MetricChart
from rlo_cli.tui.widgets.dialogs import HelpScreen, QuitScreen
from rlo_cli.tui.widgets.run_table import RunTable
from rlo_cli.tui.widgets.system_panel import SystemPanel
from tui_fixture_runs import FakeNvml, FixedSampler, make_train_run

pytestmark = pytest.mark.anyio

FAST_REFRESH_S = 0.05
SIZE = (120, 36)


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path, Path]:
    """A runs folder with an older run `alpha` and a newer run `beta` whose losses are doubled."""
    runs = tmp_path / "runs"
    alpha = make_train_run(runs, name="alpha", stamp="20240301-100000", scale=1.0)
    beta = make_train_run(runs, name="beta", stamp="20240302-100000", scale=2.0)
    return runs, alpha, beta


def make_app(runs: Path, **kwargs) -> DashboardApp:
    kwargs.setdefault("sampler", FixedSampler())
    return DashboardApp(runs, refresh_seconds=FAST_REFRESH_S, **kwargs)


async def wait_for(pilot, condition, timeout_s: float = 30.0) -> None:
    """Let the app run until `condition()` holds. The generous timeout only bounds a hang: on a
    loaded machine the reader thread can take seconds to be scheduled."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s: {condition.__doc__ or condition}")
        await pilot.pause(0.02)


def chart(app: DashboardApp) -> MetricChart:
    return app.dashboard.query_one(MetricChart)


def loaded(app: DashboardApp, path: Path):
    def check() -> bool:
        """run history loaded and drawn"""
        view = chart(app).view
        return path in app.dashboard.histories and view is not None and not view.empty
    return check


def train_loss(app: DashboardApp):
    return next(line for line in chart(app).view.lines if line.label.endswith("train loss"))


def compared_runs(app: DashboardApp) -> set[str]:
    """Run names prefixed to the chart's lines (empty unless several runs are overlaid)."""
    return {line.label.split(": ")[0] for line in chart(app).view.lines if ": " in line.label}


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


async def test_newest_run_selected_first(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        assert app.dashboard.selected == beta


async def test_selecting_run_changes_chart(two_runs):
    runs, alpha, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        beta_first = train_loss(app).ys[0]
        await pilot.press("up")
        await wait_for(pilot, lambda: train_loss(app).ys[0] != beta_first)
        assert app.dashboard.selected == alpha
        assert train_loss(app).ys[0] == pytest.approx(beta_first / 2)


async def test_marking_two_runs_overlays(two_runs):
    runs, alpha, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await pilot.press("space", "up", "space")
        await wait_for(pilot, lambda: compared_runs(app) == {"alpha", "beta"})
        labels = [line.label for line in chart(app).view.lines]
        assert labels == ["alpha: train loss", "alpha: val loss", "beta: train loss", "beta: val loss"]
        assert app.dashboard.marked == {alpha, beta}


async def test_unmarking_ends_compare(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await pilot.press("space", "up", "space")
        await wait_for(pilot, lambda: compared_runs(app) == {"alpha", "beta"})
        await pilot.press("space", "down", "space")
        await wait_for(pilot, lambda: not app.dashboard.marked)
        assert compared_runs(app) == set()


async def test_appended_lines_update_chart(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        append(beta / "metrics.jsonl", json.dumps({"step": 205, "split": "train", "loss": 0.25}) + "\n")
        await wait_for(pilot, lambda: train_loss(app).xs[-1] == 205)
        assert train_loss(app).ys[-1] == 0.25


async def test_partial_line_waits_for_newline(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        append(beta / "metrics.jsonl", '{"step": 210, "split": "train", "loss": 0.')
        reads = app.dashboard.reads_done
        await wait_for(pilot, lambda: app.dashboard.reads_done >= reads + 3)
        assert train_loss(app).xs[-1] == 200
        append(beta / "metrics.jsonl", '125}\n')
        await wait_for(pilot, lambda: train_loss(app).xs[-1] == 210)
        assert train_loss(app).ys[-1] == 0.125


async def test_unreadable_lines_counted(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        append(beta / "metrics.jsonl", "garbage\n{broken\n")
        panel = app.dashboard.query_one(ChartPanel)
        await wait_for(pilot, lambda: "2 unreadable" in str(panel.border_subtitle))
        assert app.dashboard.histories[beta].bad_metric_lines == 2


async def test_truncated_metrics_reset_chart(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        (beta / "metrics.jsonl").write_text(json.dumps({"step": 1, "split": "train", "loss": 3.0}) + "\n")
        await wait_for(pilot, lambda: train_loss(app).xs == (1,))
        assert train_loss(app).ys == (3.0,)


async def test_missing_metrics_file_shows_message(two_runs):
    runs, _, beta = two_runs
    (beta / "metrics.jsonl").unlink()
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: beta in app.dashboard.histories)
        await wait_for(pilot, lambda: chart(app).view.message.startswith("No loss values"))
        assert chart(app).view.empty


def system_text(app: DashboardApp) -> str:
    group = app.dashboard.query_one(SystemPanel).render()
    return "\n".join(text.plain for text in group.renderables)


async def test_no_gpu_panel_shows_reason(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs, sampler=LocalSampler(nvml=FakeNvml()))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.local_samples)
        await wait_for(pilot, lambda: "No GPU data" in system_text(app))
        assert FakeNvml.reason in system_text(app).replace("\n", " ")


async def test_no_gpu_panel_shows_cpu_and_memory(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs, sampler=LocalSampler(nvml=FakeNvml()))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.local_samples)
        await wait_for(pilot, lambda: "This machine" in system_text(app))
        local_part = system_text(app).split("This machine", 1)[1]
        assert " CPU " in local_part
        assert " Mem " in local_part


async def test_run_gpu_samples_shown(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await wait_for(pilot, lambda: "GPU0" in system_text(app))
        assert "°C" in system_text(app)


async def test_corrupt_files_do_not_crash(two_runs):
    runs, _, beta = two_runs
    (beta / "status.json").write_bytes(b"\xff\xfe not utf-8")
    append(beta / "system.jsonl", json.dumps({"cpu_pct": "high", "gpus": {"0": 1}}) + "\n"
           + json.dumps({"gpus": [{"index": 0, "util_pct": "x", "temp_c": "hot"}, 7]}) + "\n")
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await wait_for(pilot, lambda: "GPU0" in system_text(app))
        assert app.dashboard.summaries[beta].state == "unknown"


async def test_deleted_run_disappears(two_runs):
    runs, alpha, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        shutil.rmtree(beta)
        await wait_for(pilot, lambda: app.dashboard.selected == alpha)
        assert app.dashboard.query_one(RunTable).row_count == 1
        await wait_for(pilot, loaded(app, alpha))
        assert beta not in app.dashboard.histories


async def test_all_runs_deleted_shows_message(two_runs):
    runs, alpha, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        shutil.rmtree(runs)
        await wait_for(pilot, lambda: app.dashboard.selected is None)
        assert chart(app).view.message.startswith("No runs under")


async def test_new_run_appears(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        make_train_run(runs, name="gamma", stamp="20240303-100000")
        await wait_for(pilot, lambda: app.dashboard.query_one(RunTable).row_count == 3)
        assert app.dashboard.selected == beta


async def test_log_scale_key(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await pilot.press("l")
        await wait_for(pilot, lambda: chart(app).view.log_scale)
        assert "log scale" in str(app.dashboard.query_one(ChartPanel).border_subtitle)


async def test_chart_keys_switch_chart(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await pilot.press("right")
        await wait_for(pilot, lambda: chart(app).view.title == "Accuracy")
        await pilot.press("left", "left")
        await wait_for(pilot, lambda: chart(app).view.title == "LR")


async def test_pause_stops_updates(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await pilot.press("p")
        await pilot.pause(0.1)
        append(beta / "metrics.jsonl", json.dumps({"step": 300, "split": "train", "loss": 0.5}) + "\n")
        await pilot.pause(0.3)
        assert train_loss(app).xs[-1] == 200
        await pilot.press("p")
        await wait_for(pilot, lambda: train_loss(app).xs[-1] == 300)


async def test_help_screen_opens(two_runs):
    runs, _, _ = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.dashboard)


async def test_export_writes_png(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await pilot.press("e")
        await app.workers.wait_for_complete()
        pngs = sorted((beta / "plots").glob("*.png"))
        assert sorted(path.name.split("-")[0] for path in pngs) == ["ce", "loss"]
        assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sleeping_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


@pytest.mark.parametrize("quit_key, answer, choice", [
    ("q", "d", "detach"),
    ("ctrl+q", "s", "stop"),  # Textual's own quit key must not skip the dialog
])
async def test_quit_asks_stop_or_detach(two_runs, sleeping_child, quit_key, answer, choice):
    runs, _, beta = two_runs
    app = make_app(runs, select=beta, child=sleeping_child)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, loaded(app, beta))
        await pilot.press(quit_key)
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press(answer)
    assert app.return_value == choice


async def test_quit_without_child_exits(two_runs):
    runs, _, beta = two_runs
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
    assert app.return_value is None


def test_cli_rejects_zero_refresh(tmp_path):
    from rlo_cli.app import app

    result = CliRunner().invoke(app, ["tui", "--runs-dir", str(tmp_path), "--refresh", "0"])
    assert result.exit_code == 2
    assert "Invalid --refresh" in result.output


def test_cli_rejects_unknown_run(tmp_path):
    from rlo_cli.app import app

    result = CliRunner().invoke(app, ["tui", "--runs-dir", str(tmp_path), "no-such-run"])
    assert result.exit_code == 2
    assert "no-such-run" in result.output
