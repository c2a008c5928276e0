"""Progress display of a GAN run in thousands of images (kimg).

In a terminal: a Rich progress bar with kimg done, kimg/s and the estimated time left. Without
a terminal (a log file, CI) nothing is drawn; the per-tick log lines carry the same figures.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class KimgRateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- kimg/s" if speed is None else f"{speed:.3f} kimg/s")


class KimgProgress:
    def __init__(self, total_kimg: float, start_kimg: float = 0.0, description: str = "training"):
        self.total = total_kimg
        self.started = time.monotonic()
        self.start_kimg = start_kimg
        self._progress = None
        self._task = None
        if sys.stderr.isatty():
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=20),
                TextColumn("{task.completed:.2f}/{task.total:g} kimg"), KimgRateColumn(),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False)
            self._task = self._progress.add_task(description, total=total_kimg,
                                                 completed=start_kimg)

    def __enter__(self) -> "KimgProgress":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, kimg: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=kimg)

    def eta_seconds(self, kimg: float) -> float | None:
        """Time left at the average rate since this session started, or None before any data."""
        done = kimg - self.start_kimg
        elapsed = time.monotonic() - self.started
        if done <= 0 or elapsed <= 0:
            return None
        return (self.total - kimg) * elapsed / done


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
