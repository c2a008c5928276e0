"""Short text forms of progress, durations, metric values and histories for the panels."""

from __future__ import annotations

import math
from typing import Any, Sequence

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
STATE_STYLES = {
    "running": "bold green",
    "finished": "cyan",
    "failed": "bold red",
    "interrupted": "yellow",
    "stale": "magenta",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def progress_fraction(status: dict[str, Any]) -> float | None:
    """Progress in [0, 1] from step/total_steps, else from epoch/total_epochs."""
    for done_key, total_key in (("step", "total_steps"), ("epoch", "total_epochs")):
        done, total = _number(status.get(done_key)), _number(status.get(total_key))
        if done is not None and total:
            return min(max(done / total, 0.0), 1.0)
    return None


def progress_text(status: dict[str, Any], state: str, width: int = 8) -> str:
    """Format a bar and a counter, for example `████▌··· ep 3/5`. A finished run gets a full
    bar."""
    fraction = progress_fraction(status)
    if fraction is None and state == "finished":
        fraction = 1.0
    if fraction is None:
        bar = " " * width
    else:
        eighths = round(fraction * width * 8)
        bar = "█" * (eighths // 8) + ("▏▎▍▌▋▊▉"[eighths % 8 - 1] if eighths % 8 else "")
        bar = bar.ljust(width, "·")
    epoch, total_epochs = _number(status.get("epoch")), _number(status.get("total_epochs"))
    step, total_steps = _number(status.get("step")), _number(status.get("total_steps"))
    if epoch is not None and total_epochs:
        counter = f"ep {epoch:g}/{total_epochs:g}"
    elif step is not None and total_steps:
        counter = f"{step:g}/{total_steps:g}"
    elif step is not None:
        counter = f"step {step:g}"
    else:
        counter = ""
    return f"{bar} {counter}".rstrip()


def duration_text(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{hours // 24}d{hours % 24:02d}h"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def elapsed_seconds(status: dict[str, Any], state: str, now: float) -> float | None:
    """Run time: to now while running, else to the end (or the last heartbeat)."""
    started = _number(status.get("started_at"))
    if started is None:
        return None
    if state == "running":
        end = now
    else:
        end = _number(status.get("ended_at")) or _number(status.get("updated_at"))
    return None if end is None else end - started


def unit_text(value: Any, unit: str) -> str:
    """Format a rounded number with its unit, for example `61°C` or `420 W`. Return an empty
    string for anything but a number."""
    number = _number(value)
    return "" if number is None else f" {number:.0f}{unit}"


def value_text(value: Any) -> str:
    """Four significant digits, for example `0.8125`, `12.35`, `3.1e-05`."""
    number = _number(value)
    if number is None:
        return "-"
    return f"{number:.4g}"


def best_text(status: dict[str, Any]) -> str:
    value = value_text(status.get("best_metric"))
    if value == "-":
        return value
    name = status.get("best_metric_name")
    return f"{name} {value}" if name else value


def sparkline(values: Sequence[Any], width: int, low: float | None = None,
              high: float | None = None) -> str:
    """Draw the last `width` values as block characters, with a space for a missing or
    non-numeric value."""
    recent = [_number(value) for value in list(values)[-width:]]
    numbers = [v for v in recent if v is not None]
    if not numbers:
        return ""
    low = min(numbers) if low is None else low
    high = max(numbers) if high is None else high
    span = high - low
    chars = []
    for value in recent:
        if value is None:
            chars.append(" ")
            continue
        level = 0 if span <= 0 else round((value - low) / span * (len(SPARK_LEVELS) - 1))
        chars.append(SPARK_LEVELS[min(max(level, 0), len(SPARK_LEVELS) - 1)])
    return "".join(chars)


def megabytes_text(used: Any, total: Any = None) -> str:
    """Memory in GiB, for example `3.2/24.0 GiB`, or in MiB below 1 GiB."""
    used_mb, total_mb = _number(used), _number(total)
    if used_mb is None:
        return "-"
    scale = max(used_mb, total_mb or 0.0)
    if scale >= 1024:
        text = f"{used_mb / 1024:.1f}"
        return f"{text}/{total_mb / 1024:.1f} GiB" if total_mb else f"{text} GiB"
    text = f"{used_mb:.0f}"
    return f"{text}/{total_mb:.0f} MiB" if total_mb else f"{text} MiB"
