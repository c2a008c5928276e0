"""Messages that the dashboard's worker threads post to the UI thread."""

from __future__ import annotations

from textual.message import Message

from rlo_cli.tui.local import LocalSample
from rlo_cli.tui.reader import RunDelta, RunSummary


class FilesRead(Message):
    """New data from the reader thread. `summaries` is None when the run list was not read."""

    def __init__(self, summaries: list[RunSummary] | None, deltas: list[RunDelta]) -> None:
        super().__init__()
        self.summaries = summaries
        self.deltas = deltas


class LocalSampled(Message):
    """A sample of this machine from the sampler thread."""

    def __init__(self, sample: LocalSample) -> None:
        super().__init__()
        self.sample = sample
