"""`rlo runs list|show|compare|plot|export`: look at run directories."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rlo_cli.common import console, err_console, handle_errors

app = typer.Typer(no_args_is_help=True)

STATE_STYLES = {"running": "green", "finished": "blue", "failed": "red", "interrupted": "yellow",
                "stale": "magenta"}
# config.yaml keys that differ between any two runs without saying anything about the setup.
COMPARE_SKIPPED_KEYS = ("command", "environment", "name", "runs_dir")


def runs_dir_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--runs-dir", envvar="RLO_RUNS_DIR",
                        help="Folder holding the run directories \\[default: ./runs].")


def _state_text(state: str) -> str:
    style = STATE_STYLES.get(state)
    return f"[{style}]{state}[/]" if style else state


def _labels(summaries: list) -> list[str]:
    """Run names, or directory names for runs that share a name (they differ by timestamp)."""
    names = [summary.name for summary in summaries]
    return [summary.path.name if names.count(summary.name) > 1 else summary.name
            for summary in summaries]


def _resolve_all(references: list[str], runs_dir: Path | None) -> list[Path]:
    from rlo_core.runs import resolve_run

    return [resolve_run(reference, runs_dir) for reference in references]


@app.command("list")
@handle_errors
def list_command(
    runs_dir: Optional[Path] = runs_dir_option(),
    command: Optional[str] = typer.Option(None, "--command",
                                          help="Show only runs of this command (train, finetune, quantize or gan)."),
) -> None:
    """List runs, oldest first: state, progress, best metric, start time and duration."""
    from rich import box
    from rich.table import Table

    from rlo_core.runs import default_runs_dir, find_runs
    from rlo_core.runs.summary import format_duration, format_time, summarize_runs

    folder = runs_dir if runs_dir is not None else default_runs_dir()
    paths = find_runs(folder, command)
    if not paths:
        kind = f"{command} " if command else ""
        err_console.print(f"No {kind}runs under {folder}. Start one with 'rlo train', or pass "
                          "--runs-dir.", highlight=False)
        return
    summaries = summarize_runs(paths, read_metrics=False)
    table = Table(title=f"Runs in {folder}", box=box.SIMPLE_HEAD)
    table.add_column("name", overflow="fold")
    for column in ("command", "state", "progress", "best metric", "started", "duration"):
        table.add_column(column, no_wrap=column not in ("best metric", "progress"))
    for summary, name in zip(summaries, _labels(summaries)):
        table.add_row(name, summary.command, _state_text(summary.state), summary.progress_text(),
                      summary.best_text(), format_time(summary.started_at, "%m-%d %H:%M"),
                      format_duration(summary.duration_s))
    console.print(table)


@app.command("show")
@handle_errors
def show_command(
    run: str = typer.Argument(..., help="Run directory, run name, or 'last'."),
    runs_dir: Optional[Path] = runs_dir_option(),
) -> None:
    """Print a run's status, resolved configuration and final metrics."""
    import yaml
    from rich.table import Table

    from rlo_core.runs import resolve_run
    from rlo_core.runs.summary import format_duration, format_time, format_value, summarize_run

    summary = summarize_run(resolve_run(run, runs_dir))
    console.print(f"[bold]{summary.path}[/]", highlight=False)
    overview = Table(show_header=False, box=None)
    overview.add_column(style="bold")
    overview.add_column()
    rows = [
        ("command", summary.command), ("state", _state_text(summary.state)),
        ("progress", summary.progress_text()), ("best metric", summary.best_text()),
        ("started", format_time(summary.started_at)),
        ("duration", format_duration(summary.duration_s)),
        ("host / pid", f"{summary.status.get('host', '-')} / {summary.status.get('pid', '-')}"),
    ]
    if summary.status.get("error"):
        rows.append(("error", str(summary.status["error"])))
    for key, value in rows:
        overview.add_row(key, value)
    console.print(overview)

    console.print("\n[bold]Configuration[/] (config.yaml)")
    console.print(yaml.safe_dump(summary.config, sort_keys=False), end="", highlight=False,
                  markup=False, soft_wrap=True)

    if not summary.final:
        console.print("\nNo metrics logged yet.")
        return
    metrics = sorted({name for values in summary.final.values() for name in values})
    table = Table(title="Final metrics (last logged value per split)")
    table.add_column("split")
    for name in metrics:
        table.add_column(name, justify="right")
    for split, values in summary.final.items():
        table.add_row(split, *(format_value(values.get(name)) for name in metrics))
    console.print(table)


@app.command("compare")
@handle_errors
def compare_command(
    runs: List[str] = typer.Argument(..., help="Run directories or names."),
    metric: Optional[str] = typer.Option(None, "--metric",
                                         help="Compare only this metric (acc, loss, ppl, fid, ...) \\[default: all final metrics]."),
    runs_dir: Optional[Path] = runs_dir_option(),
) -> None:
    """Compare runs side by side: status, the options that differ, best and final metrics."""
    from rich.table import Table

    from rlo_core.errors import ConfigError
    from rlo_core.runs.plots import choose_metric
    from rlo_core.runs.summary import (best_values, format_duration, format_value, metric_goal,
                                       metric_names, summarize_runs)

    summaries = summarize_runs(_resolve_all(runs, runs_dir))
    available = metric_names(r for s in summaries for r in s.records)
    if metric is not None and metric not in available:
        raise ConfigError(f"Metric '{metric}' is not in the metrics of these runs. Logged "
                          f"metrics: {', '.join(available) or 'none'}.")
    best_metric = metric or choose_metric(summaries[0].command, available)

    table = Table(title="Run comparison")
    table.add_column("")
    for label in _labels(summaries):
        table.add_column(label, justify="right", overflow="fold")

    table.add_row("command", *(s.command for s in summaries))
    table.add_row("state", *(_state_text(s.state) for s in summaries))
    table.add_row("progress", *(s.progress_text() for s in summaries))
    table.add_row("duration", *(format_duration(s.duration_s) for s in summaries))
    keys = [key for key in dict.fromkeys(k for s in summaries for k in s.config)
            if key not in COMPARE_SKIPPED_KEYS]
    differing = [key for key in keys
                 if len({repr(s.config.get(key)) for s in summaries}) > 1]
    table.add_section()
    for key in differing:
        table.add_row(key, *(format_value(s.config.get(key)) for s in summaries))

    if best_metric is not None:
        table.add_section()
        goal = metric_goal(best_metric)
        best = [best_values(s.records, best_metric) for s in summaries]
        for split in dict.fromkeys(split for values in best for split in values):
            table.add_row(f"best {split} {best_metric} ({goal})",
                          *(format_value(values.get(split)) for values in best))
    table.add_section()
    splits = dict.fromkeys(split for s in summaries for split in s.final)
    for split in splits:
        names = [metric] if metric else list(dict.fromkeys(
            name for s in summaries for name in s.final.get(split, {})))
        for name in names:
            table.add_row(f"final {split} {name}",
                          *(format_value(s.final.get(split, {}).get(name)) for s in summaries))
    console.print(table)
    if not differing and len(summaries) > 1:
        console.print("The runs have the same configuration.")


@app.command("plot")
@handle_errors
def plot_command(
    runs: List[str] = typer.Argument(..., help="Run directories or names."),
    metric: Optional[str] = typer.Option(None, "--metric",
                                         help="Metric to plot \\[default: acc for train, ppl for finetune and quantize, fid for gan, else loss]."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="PNG file to write \\[default: RUN/plots/METRIC-by-X.png for one run, ./compare-METRIC-by-X.png for several]."),
    x: str = typer.Option("step", "--x", help="Horizontal axis: step or epoch."),
    log: bool = typer.Option(False, "--log", help="Logarithmic vertical axis."),
    split: Optional[str] = typer.Option(None, "--split",
                                        help="Plot only this split (train, val, test) \\[default: all]."),
    runs_dir: Optional[Path] = runs_dir_option(),
) -> None:
    """Plot a metric of one or more runs against step or epoch into a PNG file."""
    from rlo_core.errors import ConfigError
    from rlo_core.runs.discovery import run_command
    from rlo_core.runs.metrics import read_jsonl
    from rlo_core.runs.plots import choose_metric, plot_runs
    from rlo_core.runs.summary import metric_names

    paths = _resolve_all(runs, runs_dir)
    if metric is None:
        records = [r for path in paths for r in read_jsonl(path / "metrics.jsonl")]
        metric = choose_metric(run_command(paths[0]), metric_names(records))
        if metric is None:
            raise ConfigError(f"No metric has been logged yet in {paths[0]}/metrics.jsonl, so "
                              "there is nothing to plot.")
    if output is None:
        file_name = f"{metric}-by-{x}.png"
        output = paths[0] / "plots" / file_name if len(paths) == 1 else Path(f"compare-{file_name}")
    written = plot_runs(paths, metric, output, x=x, log_scale=log, split=split)
    console.print(f"Wrote {written}", highlight=False)


@app.command("export")
@handle_errors
def export_command(
    run: str = typer.Argument(..., help="Run directory, run name, or 'last'."),
    export_format: str = typer.Option("csv", "--format", "-f",
                               help="csv (one row per metric record) or json (config, status and records)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="File to write \\[default: standard output]."),
    split: Optional[str] = typer.Option(None, "--split", help="Export only this split."),
    runs_dir: Optional[Path] = runs_dir_option(),
) -> None:
    """Export a run's metrics as CSV or JSON."""
    import json
    import sys

    from rlo_core import atomic
    from rlo_core.errors import ConfigError
    from rlo_core.runs import read_jsonl, read_status, resolve_run
    from rlo_core.runs.discovery import read_run_config, run_command
    from rlo_core.runs.metrics import records_to_csv

    fmt = export_format.lower()
    if fmt not in ("csv", "json"):
        raise ConfigError(f"Invalid --format '{export_format}': use csv or json.")
    path = resolve_run(run, runs_dir)
    records = read_jsonl(path / "metrics.jsonl")
    if split is not None:
        records = [r for r in records if r.get("split") == split]
    if fmt == "csv":
        text = records_to_csv(records)
    else:
        document = {"run": path.name, "command": run_command(path),
                    "config": read_run_config(path), "status": read_status(path),
                    "metrics": records}
        text = json.dumps(document, indent=2, default=str) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    atomic.write_text(output, text)
    err_console.print(f"Wrote {len(records)} records to {output}", highlight=False)
