"""Chart definitions per command, and the plain-data view of a chart built from run histories."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from rlo_cli.tui.history import RunHistory

MAX_POINTS = 400  # points per line handed to the plot: about two per column of a wide terminal


@dataclass(frozen=True)
class SeriesSpec:
    """A metric key in some splits (None: any split). `compare` keeps it in compare mode."""

    splits: tuple[str, ...] | None
    key: str
    label: str
    compare: bool = True


@dataclass(frozen=True)
class ChartSpec:
    """A chart: its title, its series, and line or bar kind."""

    title: str
    series: tuple[SeriesSpec, ...]
    kind: str = "line"


EVAL = ("val", "eval")

LOSS = ChartSpec("Loss", (
    SeriesSpec(("train",), "loss", "train loss"),
    SeriesSpec(EVAL, "loss", "val loss"),
    SeriesSpec(("test",), "loss", "test loss"),
    SeriesSpec(("train",), "ce", "train CE", compare=False),
    SeriesSpec(EVAL, "ce", "val CE", compare=False),
))
ACCURACY = ChartSpec("Accuracy", (
    SeriesSpec(("train",), "acc", "train acc"),
    SeriesSpec(EVAL, "acc", "val acc"),
    SeriesSpec(("test",), "acc", "test acc"),
))
LEARNING_RATE = ChartSpec("LR", (SeriesSpec(("train",), "lr", "lr"),))
PERPLEXITY = ChartSpec("Perplexity", (
    SeriesSpec(EVAL, "ppl", "eval ppl"),
    SeriesSpec(("train",), "ppl", "train ppl", compare=False),
))
EVAL_OBJECTIVE = ChartSpec("Eval objective", (
    SeriesSpec(EVAL, "eval_objective", "eval objective"),
))
QUANTIZED_PERPLEXITY = ChartSpec("Perplexity", (
    SeriesSpec(("eval", "val", "test"), "ppl", "ppl"),
), kind="bars")
GAN_LOSSES = ChartSpec("GAN losses", (
    SeriesSpec(None, "g_loss", "G loss"),
    SeriesSpec(None, "d_loss", "D loss"),
    SeriesSpec(None, "r1", "R1", compare=False),
))
FID = ChartSpec("FID", (SeriesSpec(None, "fid", "FID"),))

CHARTS: dict[str, tuple[ChartSpec, ...]] = {
    "train": (LOSS, ACCURACY, LEARNING_RATE),
    "finetune": (LOSS, PERPLEXITY, EVAL_OBJECTIVE, LEARNING_RATE),
    "quantize": (QUANTIZED_PERPLEXITY,),
    "gan": (GAN_LOSSES, FID),
}
GENERIC_CHARTS = (ChartSpec("Loss", (SeriesSpec(None, "loss", "loss"),)),)


def charts_for(command: str | None) -> tuple[ChartSpec, ...]:
    return CHARTS.get(command or "", GENERIC_CHARTS)


@dataclass(frozen=True)
class Line:
    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


@dataclass(frozen=True)
class ChartView:
    """Everything the chart widget draws; equal views draw the same picture."""

    title: str
    kind: str = "line"
    lines: tuple[Line, ...] = ()
    bars: tuple[tuple[str, float], ...] = ()
    log_scale: bool = False
    message: str = ""
    x_label: str = "step"

    @property
    def empty(self) -> bool:
        return not self.lines and not self.bars


def decimate(xs: Sequence[float], ys: Sequence[float],
             max_points: int = MAX_POINTS) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Keep every n-th point (and always the last one) so at most about `max_points` remain."""
    count = len(xs)
    if count <= max_points:
        return tuple(xs), tuple(ys)
    stride = math.ceil(count / max_points)
    indices = list(range(0, count, stride))
    if indices[-1] != count - 1:
        indices.append(count - 1)
    return tuple(xs[i] for i in indices), tuple(ys[i] for i in indices)


def _line_label(spec: SeriesSpec, split: str, several_splits: bool, run: str | None) -> str:
    label = f"{spec.label} ({split})" if several_splits else spec.label
    return f"{run}: {label}" if run else label


def _lines(spec: ChartSpec, history: RunHistory, run: str | None, compare: bool,
           log_scale: bool) -> list[Line]:
    lines = []
    for series_spec in spec.series:
        if compare and not series_spec.compare:
            continue
        found = history.get(series_spec.splits, series_spec.key)
        for split, series in found:
            xs, ys = series.steps, series.values
            if log_scale:  # a log axis cannot show zero or negative values
                positive = [(x, y) for x, y in zip(xs, ys) if y > 0]
                xs, ys = [x for x, _ in positive], [y for _, y in positive]
            if not xs:
                continue
            xs, ys = decimate(xs, ys)
            lines.append(Line(_line_label(series_spec, split, len(found) > 1, run), xs, ys))
    return lines


def _bars(spec: ChartSpec, history: RunHistory, run: str | None) -> list[tuple[str, float]]:
    bars = []
    for series_spec in spec.series:
        for label, value in history.get_labelled(series_spec.splits, series_spec.key).items():
            bars.append((f"{run}: {label}" if run else label, value))
    return bars


def build_chart_view(spec: ChartSpec, runs: Sequence[tuple[str, RunHistory | None]],
                     log_scale: bool = False) -> ChartView:
    """Build the view of `spec` for one run, or overlay several (compare mode).

    `runs` pairs a display name with the run's history (None while it is being read).
    With several runs each line is prefixed with its run's name and only the series marked
    for comparison are drawn.
    """
    compare = len(runs) > 1
    lines: list[Line] = []
    bars: list[tuple[str, float]] = []
    for name, history in runs:
        if history is None:
            continue
        run = name if compare else None
        if spec.kind == "bars":
            bars.extend(_bars(spec, history, run))
        else:
            lines.extend(_lines(spec, history, run, compare, log_scale))
    message = ""
    if not lines and not bars:
        if not runs:
            message = "No run selected."
        elif any(history is None or not history.loaded for _, history in runs):
            message = "Reading metrics.jsonl..."
        else:
            message = f"No {spec.title.lower()} values in metrics.jsonl yet."
    title = spec.title + (" (log scale)" if log_scale and spec.kind == "line" else "")
    return ChartView(title=title, kind=spec.kind, lines=tuple(lines), bars=tuple(bars),
                     log_scale=log_scale and spec.kind == "line", message=message)
