"""Progress over decoder layers: a Rich bar with rate and ETA in a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Optional

log = logging.getLogger(__name__)


class LayerProgress:
    """Context manager that counts finished layers; `advance(detail)` after each layer."""

    def __init__(self, total: int, description: str, *, terminal: Optional[bool] = None):
        self.total = total
        self.description = description
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.done = 0
        self.started = time.monotonic()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> "LayerProgress":
        self.started = time.monotonic()
        if self.terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            from rlo_core.console import stderr_console

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=stderr_console(), transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, detail="")
        else:
            log.info("%s: %d layers", self.description, self.total)
        return self

    def advance(self, detail: str = "") -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, detail=detail)
            return
        elapsed = time.monotonic() - self.started
        remaining = elapsed / self.done * (self.total - self.done)
        log.info("%s: layer %d/%d done %s(%.1f s elapsed, about %.1f s left)",
                 self.description, self.done, self.total, f"{detail} " if detail else "",
                 elapsed, remaining)

    def __exit__(self, *exc_info: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
