"""Screenshots of the main screen on fixture runs of each command, compared with stored SVGs.

Update the stored files after an intended change with `pytest tests/test_tui_snapshots.py
--snapshot-update`, then look at them (the report page lists the differences).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlo_cli.tui import DashboardApp
from rlo_cli.tui import screen as screen_module
from rlo_cli.tui.widgets.chart import MetricChart
from tui_fixture_runs import FixedSampler, make_all_runs

NO_TIMER_S = 3600.0  # reads happen only on mount and on selection, so every screenshot is the same


@pytest.fixture
def fixture_runs(tmp_path, monkeypatch) -> dict[str, Path]:
    # One sample of this machine only, whatever the timing of the reads.
    monkeypatch.setattr(screen_module, "LOCAL_INTERVAL_S", NO_TIMER_S)
    runs = make_all_runs(tmp_path / "runs")
    # Relative paths keep tmp_path out of the header (the tests run inside tmp_path).
    return {command: Path("runs") / path.name for command, path in runs.items()}


def dashboard(select: Path) -> DashboardApp:
    return DashboardApp(Path("runs"), refresh_seconds=NO_TIMER_S, select=select,
                        sampler=FixedSampler())


async def wait_until_drawn(pilot) -> None:
    app = pilot.app
    for _ in range(500):
        charts = app.dashboard.query(MetricChart)
        if not charts:  # the screen is not composed yet
            await pilot.pause(0.02)
            continue
        view = charts.first().view
        selected = app.dashboard.selected
        if (selected is not None and selected in app.dashboard.histories and view is not None
                and not view.empty and app.dashboard.local_samples):
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("the dashboard did not draw its chart")


@pytest.mark.parametrize("command", ["train", "finetune", "quantize", "gan"])
def test_main_screen(command, fixture_runs, snap_compare):
    app = dashboard(fixture_runs[command])
    assert snap_compare(app, terminal_size=(120, 36), run_before=wait_until_drawn)


def test_main_screen_small_terminal(fixture_runs, snap_compare):
    app = dashboard(fixture_runs["train"])
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_until_drawn)


def test_compare_screen(fixture_runs, snap_compare):
    async def mark_two(pilot) -> None:
        await wait_until_drawn(pilot)
        await pilot.press("space", "down", "space")
        await wait_until_drawn(pilot)

    app = dashboard(fixture_runs["train"])
    assert snap_compare(app, terminal_size=(120, 36), run_before=mark_two)
