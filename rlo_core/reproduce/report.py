"""Shared output of the reproductions: summary statistics, Markdown tables, PNG files.

Figures are drawn on a `Figure` with an Agg canvas instead of pyplot, so no global backend
is switched and no window opens.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from rlo_core import atomic


@dataclass
class Spread:
    """Mean, sample standard deviation, minimum and maximum of the finite values of a sample."""

    mean: Optional[float]
    std: Optional[float]
    min: Optional[float]
    max: Optional[float]
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "count": self.count}

    def format(self, digits: int = 4) -> str:
        """Return `mean ± std` (or `-` for an empty sample)."""
        if self.mean is None:
            return "-"
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def spread(values: Iterable[Optional[float]]) -> Spread:
    """Summarize `values`, leaving out None and non-finite entries."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return Spread(None, None, None, None, 0)
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return Spread(statistics.fmean(finite), std, min(finite), max(finite), len(finite))


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def format_number(value: Optional[float], digits: int = 3) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}"


def new_figure(panels: int, *, width: float = 5.5, height: float = 4.0):
    """Return a figure with `panels` axes side by side, drawn with the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * panels, height), dpi=110)
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(1, panels, index + 1) for index in range(panels)]
    return figure, axes


def save_figure(figure: Any, path: Path) -> Path:
    """Write `figure` as a PNG atomically."""
    import io

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, buffer.getvalue())
    return path


def draw_band(axes: Any, xs: Sequence[float], curves: Sequence[Sequence[float]], *,
              label: str, color: str, marker: Optional[str] = None) -> None:
    """Draw the mean of `curves` at each x with a band from the minimum to the maximum.

    Curves may differ in length (a run stopped early); each x uses the curves that reach it.
    """
    means, lows, highs, positions = [], [], [], []
    for index, x in enumerate(xs):
        column = [curve[index] for curve in curves
                  if index < len(curve) and math.isfinite(curve[index])]
        if not column:
            continue
        positions.append(x)
        means.append(statistics.fmean(column))
        lows.append(min(column))
        highs.append(max(column))
    if not positions:
        return
    axes.plot(positions, means, color=color, label=label, linewidth=1.6, marker=marker)
    axes.fill_between(positions, lows, highs, color=color, alpha=0.18, linewidth=0)


def write_outputs(run_dir: Path, stem: str, document: dict[str, Any],
                  markdown: str) -> tuple[Path, Path]:
    """Write `<stem>.json` and `<stem>.md` into `run_dir` atomically."""
    json_path, markdown_path = run_dir / f"{stem}.json", run_dir / f"{stem}.md"
    atomic.write_json(json_path, document)
    atomic.write_text(markdown_path, markdown)
    return json_path, markdown_path


def copy_outputs(paths: Iterable[Path], destination: Optional[str]) -> list[Path]:
    """Copy result files into `destination` (for example docs/reproduce) when one is given."""
    if not destination:
        return []
    target = Path(destination)
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in paths:
        copy = target / path.name
        atomic.write_bytes(copy, path.read_bytes())
        copied.append(copy)
    return copied
