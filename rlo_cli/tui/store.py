"""The runs on the dashboard: summaries from the run list and histories of the runs read."""

from __future__ import annotations

from pathlib import Path

from rlo_cli.tui.history import RunHistory
from rlo_cli.tui.reader import RunDelta, RunSummary


class RunStore:
    """Summaries of the listed runs and histories of the runs read so far.

    Only the UI thread changes it, from the data the reader thread posts.
    """

    def __init__(self) -> None:
        self.summaries: dict[Path, RunSummary] = {}
        self.histories: dict[Path, RunHistory] = {}

    def set_summaries(self, summaries: list[RunSummary]) -> dict[Path, RunSummary]:
        """Replace the run list and drop the histories of runs no longer listed.

        Returns the summaries of the runs that were removed.
        """
        previous = self.summaries
        self.summaries = {summary.path: summary for summary in summaries}
        removed = {path: previous[path] for path in set(previous) - set(self.summaries)}
        for path in removed:
            self.histories.pop(path, None)
        return removed

    def apply(self, delta: RunDelta) -> None:
        """Merge new data of a listed run into its history (data of unlisted runs is dropped)."""
        if delta.path not in self.summaries:
            return
        history = self.histories.setdefault(delta.path, RunHistory(delta.path))
        if delta.metrics.records or delta.metrics_reset or not history.loaded:
            history.add_chunk(delta.metrics, reset=delta.metrics_reset)
        if delta.system or delta.system_reset:
            history.add_system(delta.system, reset=delta.system_reset)
        if delta.events or delta.events_reset:
            history.add_events(delta.events, reset=delta.events_reset)
        if delta.bad_metric_lines != history.bad_metric_lines:
            history.bad_metric_lines = delta.bad_metric_lines
            history.version += 1
        history.loaded = True
