"""Graceful Ctrl-C. The first SIGINT requests a stop after the current step, and a second
one raises KeyboardInterrupt at once."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class GracefulInterrupt:
    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Interrupt received: finishing the current step and saving a checkpoint "
                    "(press Ctrl-C again to abort without saving).")

    def __enter__(self) -> "GracefulInterrupt":
        # Signal handlers can only be installed from the main thread (not in a TUI worker).
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
