"""The chart panel: a row of chart names above one plotext chart of the selected runs."""

from __future__ import annotations

import logging

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from rlo_cli.tui.charts import ChartSpec, ChartView, build_chart_view
from rlo_cli.tui.format import value_text
from rlo_cli.tui.history import RunHistory

log = logging.getLogger(__name__)


class MetricChart(PlotextPlot):
    """Draws a ChartView; assigning an equal view again draws nothing."""

    view: reactive[ChartView | None] = reactive(None)

    def watch_view(self, view: ChartView | None) -> None:
        plt = self.plt
        plt.clear_figure()
        if view is None or view.empty:
            return
        if view.kind == "bars":
            # plotext draws the first horizontal bar at the bottom: reverse to keep log order
            # top to bottom, and put each value in its label since bar lengths can differ 100x.
            bars = list(reversed(view.bars))
            plt.bar([f"{label} {value_text(value)}" for label, value in bars],
                    [value for _, value in bars], orientation="horizontal", width=0.6)
        else:
            for line in view.lines:
                plt.plot(line.xs, line.ys, label=line.label, marker="braille")
            plt.xlabel(view.x_label)
            if view.log_scale:
                plt.yscale("log")

    def render(self) -> RenderableType:
        try:
            return super().render()
        except Exception as error:  # plotext raises plain ValueError/ZeroDivisionError on odd data
            log.warning("plotext could not draw %s: %s", self.view and self.view.title, error)
            return Text(f"Could not draw this chart: {error}", style="red")


class ChartTabs(Static):
    """Names of the charts available for the selected run, the active one highlighted."""

    titles: reactive[tuple[str, ...]] = reactive(tuple)
    active: reactive[int] = reactive(0)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, title in enumerate(self.titles):
            if index:
                text.append(" │ ", style="dim")
            text.append(f" {title} ", style="reverse bold" if index == self.active else "")
        return text


class ChartPanel(Vertical):
    """Chart names, the chart, and a message in its place while there is nothing to draw."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple | None = None

    def compose(self) -> ComposeResult:
        yield ChartTabs(id="chart-tabs")
        yield MetricChart(id="chart")
        yield Static(id="chart-message")

    def draw(self, runs: list[tuple[str, RunHistory | None]], specs: tuple[ChartSpec, ...],
             active: int, log_scale: bool, no_runs_message: str) -> None:
        """Draw chart `specs[active]` of `runs` (name and history), overlaid when several.

        Returns at once when neither the arguments nor the histories changed since last time.
        """
        versions = tuple(-1 if history is None else history.version for _, history in runs)
        key = (tuple(name for name, _ in runs), versions, specs, active, log_scale)
        if key == self._drawn:
            return
        self._drawn = key
        if runs:
            view = build_chart_view(specs[active], runs, log_scale=log_scale)
        else:
            view = ChartView(title="No runs", message=no_runs_message)
        if len(runs) > 1:
            heading = f"Comparing {len(runs)} runs"
        else:
            heading = runs[0][0] if runs else "Charts"
        notes = []
        if view.log_scale:
            notes.append("log scale")
        bad = sum(history.bad_metric_lines for _, history in runs if history is not None)
        if bad:
            notes.append(f"{bad} unreadable metric lines skipped")
        self.show(view, tuple(spec.title for spec in specs), active, heading, " · ".join(notes))

    def show(self, view: ChartView, titles: tuple[str, ...], active: int, heading: str,
             note: str = "") -> None:
        tabs = self.query_one(ChartTabs)
        tabs.titles, tabs.active = titles, active
        self.query_one(MetricChart).view = view
        self.query_one("#chart-message", Static).update(view.message)
        self.set_class(view.empty, "empty")
        self.border_title = heading
        self.border_subtitle = note
