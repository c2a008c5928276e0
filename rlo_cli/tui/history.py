"""In-memory history of one run: metric series, system samples and log lines."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

# Keys of a metric record that place it (x axis, split) instead of being plotted.
POSITION_KEYS = frozenset({"time", "step", "epoch", "split"})
# Numeric keys that label a quantization result instead of measuring it.
LABEL_KEYS = frozenset({"wbits", "abits", "group_size"})

SYSTEM_HISTORY = 120  # system.jsonl samples kept per run for the sparklines
EVENT_LINES = 200  # events.log lines kept per run


def _number(value: Any) -> float | None:
    """Convert an int or finite float to float. Return None for anything else (bool, str, NaN,
    inf, None)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value)
    return None


def quantize_label(record: dict[str, Any]) -> str:
    """Name a quantization result by method and bit width, for example `gptq w4`."""
    label = str(record.get("method", "?"))
    wbits = record.get("wbits")
    if wbits is not None:
        label += f" w{wbits}"
    return label


@dataclass
class Series:
    """One metric of one split: steps and values, in log order."""

    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


SeriesKey = tuple[str, str]  # (split, metric)
LabelKey = tuple[str, str | None]  # (method and bit width, data set)


@dataclass
class MetricChunk:
    """Metric records sorted into series, ready to merge into a RunHistory.

    The reader thread builds it, so the UI thread only extends lists.
    """

    series: dict[SeriesKey, Series] = field(default_factory=dict)
    labelled: list[tuple[SeriesKey, LabelKey, float]] = field(default_factory=list)
    records: int = 0


def parse_metrics(records: Iterable[dict[str, Any]], first_index: int = 0) -> MetricChunk:
    """Sort records into series by split and key. A record without a numeric step is placed at
    its index in the file (`first_index` is the index of the first record given)."""
    chunk = MetricChunk()
    series = chunk.series
    for index, record in enumerate(records, start=first_index):
        split = str(record.get("split") or "train")
        step = _number(record.get("step"))
        if step is None:
            step = float(index)
        label: LabelKey | None = None
        if "method" in record:  # a quantization result: one value per method and bit width
            dataset = record.get("dataset")
            label = (quantize_label(record), None if dataset is None else str(dataset))
        for key, raw in record.items():
            if key in POSITION_KEYS or key in LABEL_KEYS:
                continue
            value = _number(raw)
            if value is None:
                continue
            if label is not None:
                chunk.labelled.append(((split, key), label, value))
                continue
            target = series.get((split, key))
            if target is None:
                target = series[(split, key)] = Series()
            target.steps.append(step)
            target.values.append(value)
        chunk.records += 1
    return chunk


class RunHistory:
    """Metric series, system samples and log lines of one run directory.

    `version` grows with every change, so views rebuild only when their data changed.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.series: dict[SeriesKey, Series] = {}
        # Latest value per (method and bit width, data set), for quantization results.
        self.labelled: dict[SeriesKey, dict[LabelKey, float]] = {}
        self.system: deque[dict[str, Any]] = deque(maxlen=SYSTEM_HISTORY)
        self.events: deque[str] = deque(maxlen=EVENT_LINES)
        self.events_added = 0  # lines added since the last reset of events.log
        self.events_generation = 0  # counts resets (events.log truncated or replaced)
        self.bad_metric_lines = 0
        self.records = 0
        self.loaded = False
        self.version = 0

    def add_chunk(self, chunk: MetricChunk, reset: bool = False) -> None:
        if reset:
            self.series.clear()
            self.labelled.clear()
            self.records = 0
        for key, part in chunk.series.items():
            target = self.series.get(key)
            if target is None:
                self.series[key] = part
            else:
                target.steps.extend(part.steps)
                target.values.extend(part.values)
        for key, label, value in chunk.labelled:
            self.labelled.setdefault(key, {})[label] = value
        self.records += chunk.records
        self.version += 1

    def add_metrics(self, records: Iterable[dict[str, Any]], reset: bool = False) -> None:
        """Parse and add records on the calling thread (the app gets chunks from the reader)."""
        self.add_chunk(parse_metrics(records, 0 if reset else self.records), reset=reset)

    def add_system(self, records: Iterable[dict[str, Any]], reset: bool = False) -> None:
        if reset:
            self.system.clear()
        self.system.extend(records)
        self.version += 1

    def add_events(self, lines: Iterable[str], reset: bool = False) -> None:
        lines = list(lines)
        if reset:
            self.events.clear()
            self.events_added = 0
            self.events_generation += 1
        self.events.extend(lines)
        self.events_added += len(lines)
        self.version += 1

    def get(self, splits: tuple[str, ...] | None, metric: str) -> list[tuple[str, Series]]:
        """Return the (split, series) pairs of `metric` in the given splits (None: any split)."""
        found = []
        for (split, key), series in self.series.items():
            if key == metric and (splits is None or split in splits):
                found.append((split, series))
        if splits is not None:
            found.sort(key=lambda item: splits.index(item[0]))
        return found

    def get_labelled(self, splits: tuple[str, ...] | None, metric: str) -> dict[str, float]:
        """Return the latest value of `metric` per method and bit width.

        The data set joins the label only when results cover more than one data set.
        """
        values: dict[tuple[str, str | None], float] = {}
        for (split, key), by_label in self.labelled.items():
            if key == metric and (splits is None or split in splits):
                values.update(by_label)
        several = len({dataset for _, dataset in values}) > 1
        return {(f"{label} {dataset}" if several and dataset else label): value
                for (label, dataset), value in values.items()}
