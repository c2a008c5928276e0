"""The dashboard screen: run list, charts, system panel and log tail, and the keys that drive them.

State the user changes (selection, marks, log scale, pause, chart) lives in reactive attributes
whose watchers redraw the panels. A timer starts disk reads in a thread worker. The worker
posts `FilesRead`, and its handler merges the new data into the run histories on the UI thread.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from rlo_cli.tui.charts import ChartSpec, charts_for
from rlo_cli.tui.export import export_chart
from rlo_cli.tui.history import RunHistory
from rlo_cli.tui.local import LocalSample, LocalSampler
from rlo_cli.tui.messages import FilesRead, LocalSampled
from rlo_cli.tui.reader import RunsReader, RunSummary, default_run
from rlo_cli.tui.store import RunStore
from rlo_cli.tui.widgets.chart import ChartPanel
from rlo_cli.tui.widgets.dialogs import HelpScreen
from rlo_cli.tui.widgets.events_panel import EventsPanel
from rlo_cli.tui.widgets.run_table import RunTable
from rlo_cli.tui.widgets.system_panel import SystemPanel, SystemView

NARROW_WIDTH = 100  # below this many columns the run list drops its Command column
SHORT_HEIGHT = 30  # below this many rows the events.log panel is hidden to leave the chart room
LOCAL_INTERVAL_S = 1.0  # live NVML/psutil samples of this machine at most this often
LOCAL_HISTORY = 60
RUN_SYSTEM_HISTORY = 60


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("up", "move(-1)", "Select", key_display="↑↓", priority=True),
        Binding("down", "move(1)", "Select", show=False, priority=True),
        Binding("left", "chart(-1)", "Chart", key_display="←→", priority=True),
        Binding("right", "chart(1)", "Chart", show=False, priority=True),
        Binding("space", "toggle_mark", "Mark", priority=True),
        Binding("l", "toggle_log", "Log"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("e", "export", "Export"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    selected: reactive[Path | None] = reactive(None, init=False)
    marked: reactive[frozenset[Path]] = reactive(frozenset, init=False)
    log_scale: reactive[bool] = reactive(False, init=False)
    paused: reactive[bool] = reactive(False, init=False)
    chart_index: reactive[int] = reactive(0, init=False)

    def __init__(self, reader: RunsReader, sampler: LocalSampler, refresh_seconds: float,
                 initial_selection: Path | None = None) -> None:
        super().__init__()
        self.reader = reader
        self.sampler = sampler
        self.refresh_seconds = refresh_seconds
        self.initial_selection = initial_selection
        self.store = RunStore()
        self.local_samples: deque[LocalSample] = deque(maxlen=LOCAL_HISTORY)
        self.reads_done = 0
        self._reading = False
        self._read_again = False
        self._sampling = False

    @property
    def summaries(self) -> dict[Path, RunSummary]:
        return self.store.summaries

    @property
    def histories(self) -> dict[Path, RunHistory]:
        return self.store.histories

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="main"):
            yield RunTable(id="runs")
            with Horizontal(id="body"):
                yield ChartPanel(id="chart-panel")
                with Vertical(id="side"):
                    yield SystemPanel(id="system")
                    yield EventsPanel(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunTable).focus()
        self.query_one("#events", EventsPanel).border_title = "events.log"
        self.query_one("#system", SystemPanel).border_title = "System"
        self.query_one(RunTable).border_title = "Runs"
        self._timer = self.set_interval(self.refresh_seconds, self.request_read)
        self._local_timer = self.set_interval(max(LOCAL_INTERVAL_S, self.refresh_seconds),
                                              self.request_local_sample)
        self._update_subtitle()
        self._fit_to(self.app.size.width, self.app.size.height)
        self.request_read()
        self.request_local_sample()
        self.update_views()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_to(event.size.width, event.size.height)

    def _fit_to(self, width: int, height: int) -> None:
        self.set_class(height < SHORT_HEIGHT, "short")
        self.query_one(RunTable).set_compact(width < NARROW_WIDTH)

    # -- reading ----------------------------------------------------------------------------

    def watched_paths(self) -> list[Path]:
        paths = [] if self.selected is None else [self.selected]
        return paths + sorted(p for p in self.marked if p != self.selected)

    def request_read(self) -> None:
        """Start a read in the worker thread, or queue one if a read is in progress.

        While paused, only runs never read before are read (so a newly selected run still
        shows its data) and the run list is left as it is.
        """
        if self._reading:
            self._read_again = True
            return
        paths = self.watched_paths()
        if self.paused:
            paths = [p for p in paths if p not in self.histories]
            if not paths:
                return
        self._reading = True
        preferred = self.initial_selection if self.selected is None else None
        self._read_files(paths, scan=not self.paused, preferred=preferred)

    @work(thread=True, group="reader")
    def _read_files(self, paths: list[Path], scan: bool, preferred: Path | None) -> None:
        summaries = self.reader.scan() if scan else None
        if not paths and summaries:
            # Nothing selected yet: read the run the screen is about to select, so the first
            # chart does not wait for a second read.
            guess = default_run(summaries, preferred)
            paths = [guess] if guess is not None else []
        self.post_message(FilesRead(summaries, self.reader.read(paths)))

    def request_local_sample(self) -> None:
        if self._sampling or self.paused:
            return
        self._sampling = True
        self._sample_local()

    @work(thread=True, group="local")
    def _sample_local(self) -> None:
        self.post_message(LocalSampled(self.sampler.sample()))

    def on_local_sampled(self, message: LocalSampled) -> None:
        self._sampling = False
        self.local_samples.append(message.sample)
        self._update_system()

    def on_files_read(self, message: FilesRead) -> None:
        self._reading = False
        self.reads_done += 1
        if message.summaries is not None:
            self._merge_summaries(message.summaries)
        for delta in message.deltas:
            self.store.apply(delta)
        self.update_views()
        if self._read_again:
            self._read_again = False
            self.request_read()

    def _merge_summaries(self, summaries: list[RunSummary]) -> None:
        for path, summary in self.store.set_summaries(summaries).items():
            if path == self.selected or path in self.marked:
                self.notify(f"Run {summary.name} was removed from disk.", severity="warning")
        if not self.marked <= set(self.summaries):
            self.marked = frozenset(p for p in self.marked if p in self.summaries)
        table = self.query_one(RunTable)
        table.show_runs(summaries, set(self.marked), time.time())
        if self.selected not in self.summaries:
            self.selected = self._default_selection(table)

    def _default_selection(self, table: RunTable) -> Path | None:
        if not self.summaries:
            return None
        if self.initial_selection in self.summaries:
            choice, self.initial_selection = self.initial_selection, None
        elif self.selected is not None:  # the selected run was deleted: stay where the cursor is
            choice = table.path_at_cursor()
        else:
            choice = default_run(list(self.summaries.values()))
        if choice is not None:
            table.move_to(choice)
        return choice

    # -- views --------------------------------------------------------------------------------

    def chart_specs(self) -> tuple[ChartSpec, ...]:
        summary = self.summaries.get(self.selected) if self.selected else None
        return charts_for(summary.command if summary else None)

    def compared_paths(self) -> list[Path]:
        """Return the runs drawn on the chart: the selected one and every marked run, in list
        order."""
        chosen = set(self.marked) | ({self.selected} if self.selected else set())
        return [path for path in self.summaries if path in chosen]

    def current_spec(self) -> ChartSpec:
        specs = self.chart_specs()
        return specs[min(self.chart_index, len(specs) - 1)]

    def update_views(self) -> None:
        self._update_chart()
        self._update_system()
        history = self.histories.get(self.selected) if self.selected else None
        self.query_one(EventsPanel).show(history)

    def _update_system(self) -> None:
        history = self.histories.get(self.selected) if self.selected else None
        summary = self.summaries.get(self.selected) if self.selected else None
        samples = tuple(history.system)[-RUN_SYSTEM_HISTORY:] if history else ()
        self.query_one(SystemPanel).view = SystemView(
            run_name=summary.name if summary else None, samples=samples,
            local=tuple(self.local_samples))

    def _update_chart(self) -> None:
        runs = [(self.summaries[p].name, self.histories.get(p)) for p in self.compared_paths()]
        specs = self.chart_specs()
        where = "the given runs" if self.reader.explicit else str(self.reader.runs_dir)
        self.query_one(ChartPanel).draw(
            runs, specs, min(self.chart_index, len(specs) - 1), self.log_scale,
            no_runs_message=(f"No runs under {where} yet. New runs appear here as they start, "
                             "for example: rlo train --profile quickstart"))

    def _update_subtitle(self) -> None:
        where = str(self.reader.runs_dir) if self.reader.explicit is None else "selected runs"
        self.sub_title = where + (" · PAUSED (p resumes)" if self.paused else "")

    # -- watchers -----------------------------------------------------------------------------

    def watch_selected(self) -> None:
        self.request_read()
        self.update_views()

    def watch_marked(self) -> None:
        self.query_one(RunTable).show_runs(list(self.summaries.values()), set(self.marked),
                                           time.time())
        self.request_read()
        self.update_views()

    def watch_log_scale(self) -> None:
        self._update_chart()

    def watch_chart_index(self) -> None:
        self._update_chart()

    def watch_paused(self, paused: bool) -> None:
        for timer in (self._timer, self._local_timer):
            if paused:
                timer.pause()
            else:
                timer.resume()
        if not paused:
            self.request_read()
        self._update_subtitle()

    # -- events and actions -------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Read the cursor instead of the event's row: events of rows added or moved to from
        # code arrive late, after the cursor has moved on.
        path = self.query_one(RunTable).path_at_cursor()
        if path is not None:
            self.selected = path

    def action_move(self, delta: int) -> None:
        table = self.query_one(RunTable)
        if delta < 0:
            table.action_cursor_up()
        else:
            table.action_cursor_down()
        # Select now instead of on RowHighlighted, so a key pressed right after acts on this run.
        self.selected = table.path_at_cursor()

    def action_chart(self, delta: int) -> None:
        count = len(self.chart_specs())
        self.chart_index = (min(self.chart_index, count - 1) + delta) % count

    def action_toggle_mark(self) -> None:
        if self.selected is not None:
            self.marked = self.marked ^ {self.selected}

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_export(self) -> None:
        paths = self.compared_paths()
        if not paths or self.selected is None:
            self.notify("No run to export.", severity="warning")
            return
        compare = len(paths) > 1
        metrics = list(dict.fromkeys(series.key for series in self.current_spec().series
                                     if series.compare or not compare))
        export_chart(self, paths, self.selected, metrics, self.log_scale)
