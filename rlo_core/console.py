"""One Rich console on stderr shared by progress bars and the CLI's log handler, so bars and
log lines do not overwrite each other."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console


@lru_cache(maxsize=1)
def stderr_console() -> Console:
    return Console(stderr=True)
