"""The `rlo tui` application: one dashboard screen over a runs folder or a list of runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from rlo_cli.tui.local import LocalSampler
from rlo_cli.tui.reader import RunsReader
from rlo_cli.tui.screen import DashboardScreen
from rlo_cli.tui.widgets.dialogs import QuitScreen

DEFAULT_REFRESH_S = 0.5


class DashboardApp(App[str | None]):
    """Live dashboard of run directories.

    `child` is a process started by `launch_with_dashboard`. While it runs, quitting opens a
    dialog to stop it or detach, and `run()` returns "stop" or "detach". Otherwise `run()`
    returns None.
    """

    # Ctrl+Q would otherwise quit at once and leave a launched run without the dialog.
    BINDINGS = [Binding("ctrl+q", "request_quit", "Quit", show=False, priority=True)]
    CSS_PATH = "dashboard.tcss"
    TITLE = "rlo dashboard"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, runs_dir: Path, runs: list[Path] | None = None, *,
                 refresh_seconds: float = DEFAULT_REFRESH_S, select: Path | None = None,
                 child: subprocess.Popen | None = None,
                 sampler: LocalSampler | None = None) -> None:
        super().__init__()
        self.reader = RunsReader(Path(runs_dir), runs)
        self.sampler = sampler if sampler is not None else LocalSampler()
        self.refresh_seconds = refresh_seconds
        self.select = select
        self.child = child
        self.dashboard = DashboardScreen(self.reader, self.sampler, refresh_seconds,
                                         initial_selection=select)

    def get_default_screen(self) -> DashboardScreen:
        return self.dashboard

    def action_request_quit(self) -> None:
        if self.child is None or self.child.poll() is not None:
            self.exit(None)
            return
        summary = self.dashboard.summaries.get(self.select) if self.select else None
        name = summary.name if summary else f"The run (pid {self.child.pid})"
        self.push_screen(QuitScreen(name), self._quit_answered)

    def _quit_answered(self, choice: str | None) -> None:
        if choice is not None:
            self.exit(choice)
