"""The tail of the selected run's events.log."""

from __future__ import annotations

import re
from pathlib import Path

from textual.widgets import Log

from rlo_cli.tui.history import EVENT_LINES, RunHistory

# "2024-03-01 10:15:00,123 INFO rlo_core.train.loop: message", as Run.start formats the log.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d),\d+ (\w+) [\w.]+: (.*)$")


def short_line(line: str) -> str:
    """Drop the date and logger name of a log line, and the level when it is INFO."""
    match = LOG_LINE.match(line)
    if match is None:
        return line
    clock, level, message = match.groups()
    return f"{clock} {message}" if level == "INFO" else f"{clock} {level} {message}"


class EventsPanel(Log):
    """Writes only the lines added since the last call, unless the run or file changed."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=EVENT_LINES, **kwargs)
        self._displayed_key: tuple[Path, int] | None = None
        self._count = 0

    def show(self, history: RunHistory | None) -> None:
        if history is None:
            if self._displayed_key is not None:
                self.clear()
                self._displayed_key = None
            return
        key = (history.path, history.events_generation)
        if key != self._displayed_key:
            self.clear()
            self.write_lines([short_line(line) for line in history.events])
            self._displayed_key, self._count = key, history.events_added
            return
        new = history.events_added - self._count
        if new > 0:
            recent = list(history.events)[-min(new, len(history.events)):]
            self.write_lines([short_line(line) for line in recent])
            self._count = history.events_added
