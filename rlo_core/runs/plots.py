"""PNG plots of run metrics (loss, accuracy, perplexity, FID) against step or epoch.

Drawing goes through a `Figure` with an Agg canvas instead of pyplot, so no global backend
is switched and no window opens, which keeps this safe inside the dashboard process.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from rlo_core import atomic
from rlo_core.errors import ConfigError
from rlo_core.runs.discovery import read_run_config, run_command, run_name
from rlo_core.runs.metrics import read_jsonl
from rlo_core.runs.summary import DEFAULT_METRICS, metric_names

log = logging.getLogger(__name__)

X_AXES = ("step", "epoch")
SPLIT_STYLES = {"train": "--", "val": "-", "eval": "-", "test": ":"}
SPLIT_ORDER = ("train", "val", "eval", "test")
METRIC_LABELS = {
    "loss": "loss (training objective)", "ce": "cross-entropy", "acc": "accuracy",
    "ppl": "perplexity", "fid": "FID", "g_loss": "generator loss", "d_loss": "discriminator loss",
    "lr": "learning rate",
}
RLO_LOSSES = ("rlo", "root")


def choose_metric(command: str | None, available: list[str]) -> str | None:
    """Pick the command's default metric (acc, ppl, fid, ...) among the logged ones."""
    for metric in DEFAULT_METRICS.get(command or "", ()) + ("loss",):
        if metric in available:
            return metric
    return available[0] if available else None


def loss_label(config: dict[str, Any]) -> str:
    """Return the loss name with the k and m it uses from a run's config, like `rlo k=3 m=3`."""
    loss = config.get("loss")
    if not loss:
        return ""
    parts = [str(loss)]
    if str(loss).lower().startswith(RLO_LOSSES):
        names = ("k",) if "convex" in str(loss).lower() else ("k", "m")
        for name in names:
            value = config.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parts.append(f"{name}={value:g}")
    return " ".join(parts)


def xy_series(records: list[dict[str, Any]], metric: str, split: str,
              x: str) -> tuple[list[float], list[float]]:
    """Return the points of one metric and split, sorted by x. Values at one x (train records of
    one epoch when x is "epoch", or steps logged twice) are averaged."""
    groups: dict[float, list[float]] = {}
    for record in records:
        if record.get("split", "train") != split:
            continue
        position, value = record.get(x), record.get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(position, bool) or not isinstance(position, (int, float)):
            continue
        groups.setdefault(float(position), []).append(float(value))
    xs = sorted(groups)
    return xs, [sum(groups[position]) / len(groups[position]) for position in xs]


def _split_order(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


def _draw_run(axes: Any, records: list[dict[str, Any]], label: str, color: str, metric: str,
              x: str, split: str | None, log_scale: bool) -> int:
    """Draw one line per split of one run; returns the number of lines drawn."""
    splits = [split] if split else sorted({str(r.get("split", "train")) for r in records},
                                          key=_split_order)
    drawn = 0
    for split_name in splits:
        xs, ys = xy_series(records, metric, split_name, x)
        if log_scale:  # a log axis cannot show zero or negative values
            positive_points = [(a, b) for a, b in zip(xs, ys) if b > 0]
            xs = [a for a, _ in positive_points]
            ys = [b for _, b in positive_points]
        if not xs:
            continue
        axes.plot(xs, ys, color=color, linestyle=SPLIT_STYLES.get(split_name, "-."),
                  marker="o" if len(xs) <= 30 else None, markersize=3,
                  label=f"{label} {split_name}")
        drawn += 1
    return drawn


def _unique_labels(run_dirs: list[Path]) -> list[str]:
    names = [run_name(path) for path in run_dirs]
    return [path.name if names.count(name) > 1 else name for path, name in zip(run_dirs, names)]


def plot_runs(run_dirs: list[Path], metric: str | None, out_path: Path, *, x: str = "step",
              log_scale: bool = False, split: str | None = None) -> Path:
    """Draw one metric of one or more runs against step or epoch and save it as a PNG.

    Each run gets one color, and each split (train dashed, val solid, test dotted) one line
    style. The legend shows the run name, loss, k and m from each run's config.yaml. With
    `metric=None` the first run's command picks the metric (accuracy for train, perplexity
    for finetune and quantize, FID for gan, then loss). Returns `out_path`.
    """
    if x not in X_AXES:
        raise ConfigError(f"Invalid x axis '{x}': use one of {', '.join(X_AXES)}.")
    run_dirs = [Path(path) for path in run_dirs]
    if not run_dirs:
        raise ConfigError("No run to plot. Pass at least one run directory or name.")
    runs = [(path, read_jsonl(path / "metrics.jsonl"), read_run_config(path)) for path in run_dirs]
    available = metric_names(record for _, records, _ in runs for record in records)
    if metric is None:
        metric = choose_metric(run_command(run_dirs[0]), available)
        if metric is None:
            raise ConfigError(f"No metric has been logged yet in {run_dirs[0]}/metrics.jsonl, so "
                              "there is nothing to plot. Wait for the first logged step.")
    elif metric not in available:
        raise ConfigError(f"Metric '{metric}' is not in the metrics of the selected runs. "
                          f"Logged metrics: {', '.join(available) or 'none'}. Pick one of those.")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    lines = 0
    for index, ((_, records, config), name) in enumerate(zip(runs, _unique_labels(run_dirs))):
        details = loss_label(config)
        label = f"{name} ({details})" if details else name
        lines += _draw_run(axes, records, label, f"C{index % 10}", metric, x, split, log_scale)
    if lines == 0:
        where = f" for split '{split}'" if split else ""
        positive = " with a value > 0 (needed by --log)" if log_scale else ""
        raise ConfigError(f"Metric '{metric}' has no points{where}{positive} against '{x}' in "
                          "the selected runs. Try --x step, another --split, or another --metric.")

    axes.set_xlabel(x)
    axes.set_ylabel(METRIC_LABELS.get(metric, metric))
    axes.set_title(f"{METRIC_LABELS.get(metric, metric)} by {x}")
    if log_scale:
        axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    out_path = Path(out_path)
    atomic.write_bytes(out_path, buffer.getvalue())
    log.debug("Wrote %s (%s by %s, %d lines)", out_path, metric, x, lines)
    return out_path
