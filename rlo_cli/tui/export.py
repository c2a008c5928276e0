"""PNG export of the current chart through the matplotlib plotting of `rlo runs plot`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from textual.widget import Widget

from rlo_core.errors import RloError

log = logging.getLogger(__name__)


def export_path(selected: Path, metric: str, compared: int, stamp: str) -> Path:
    """`<selected run>/plots/<metric>[-compare]-<YYYYmmdd-HHMMSS>.png`."""
    kind = f"{metric}-compare" if compared > 1 else metric
    return selected / "plots" / f"{kind}-{stamp}.png"


def export_chart(owner: Widget, run_dirs: list[Path], selected: Path, metrics: list[str],
                 log_scale: bool) -> None:
    """Write one PNG per metric of the chart in a thread worker of `owner`, and report the
    files written (or the errors) as notifications."""
    stamp = time.strftime("%Y%m%d-%H%M%S")

    def work() -> None:
        from rlo_core.runs.plots import plot_runs

        written, errors = [], []
        for metric in metrics:
            out_path = export_path(selected, metric, len(run_dirs), stamp)
            try:
                out_path.parent.mkdir(parents=True, exist_ok=True)
                written.append(plot_runs(run_dirs, metric, out_path, x="step",
                                         log_scale=log_scale))
            except (RloError, OSError) as error:
                log.warning("PNG export of %s failed: %s", metric, error)
                errors.append(str(error))
        if written:
            files = "\n".join(str(path) for path in written)
            owner.app.call_from_thread(owner.notify, f"Saved {files}", title="Chart exported")
        for error in errors:
            owner.app.call_from_thread(owner.notify, f"Export failed: {error}",
                                       severity="error", timeout=8)

    owner.notify(f"Exporting {', '.join(metrics)} to PNG...", timeout=2)
    owner.run_worker(work, thread=True, group="export", name="export chart")
