"""Benchmark of `rlo tui`: startup time, idle CPU, and latency of a new metric line.

Run: `python benchmarks/bench_tui.py [--runs 20] [--lines 10000] [--idle-seconds 20]`.

- Startup: `rlo tui` starts in a pseudo-terminal (120x36); the time runs until its output contains
  a plotext axis, that is until the chart of the selected run (10,000 lines) is drawn. One
  untimed start warms the OS file cache, then `--starts` starts are timed. The CPU time the
  process used until then is printed too: on a machine shared with other jobs it shows the
  work the dashboard needs, while the wall time also counts the wait for a free core.
- Idle CPU: CPU time of that process (all threads) over `--idle-seconds` while no file
  changes, as a percentage of one core.
- Latency: in a headless `App.run_test()` at the default refresh, the time from appending one
  line to metrics.jsonl to the chart view holding its point, over `--appends` tries. This
  leaves out the terminal write, which follows in the same refresh.

Targets: startup under 2 s, idle under 5% of a core, latency under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import math
import os
import platform
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import psutil

COLUMNS, ROWS = 120, 36
AXIS_MARK = "┤".encode()  # plotext draws this on the y axis, so it appears once the chart is drawn


def write_runs(runs_dir: Path, runs: int, lines: int) -> list[Path]:
    """Finished train runs with `lines` metric records each (val every 100 steps)."""
    start = 1_700_000_000.0
    paths = []
    for index in range(runs):
        run_dir = runs_dir / f"20240101-{index:06d}-train-bench-{index:02d}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text(f"command: train\nname: bench-{index:02d}\n")
        (run_dir / "status.json").write_text(json.dumps({
            "state": "finished", "command": "train", "pid": 1, "host": "bench",
            "started_at": start, "ended_at": start + lines, "updated_at": start + lines,
            "step": lines, "total_steps": lines, "epoch": 10, "total_epochs": 10,
            "best_metric": 0.9, "best_metric_name": "val_acc"}))
        with open(run_dir / "metrics.jsonl", "w") as handle:
            for step in range(lines):
                split = "val" if step % 100 == 99 else "train"
                loss = 2.3 * math.exp(-step / 3000) + 0.05 * math.sin(step / 7 + index)
                handle.write(json.dumps({"time": start + step, "step": step, "epoch": step / 1000,
                                         "split": split, "loss": loss, "ce": loss * 0.9,
                                         "acc": 1 - loss / 2.5, "lr": 1e-3}) + "\n")
        (run_dir / "system.jsonl").write_text("")
        (run_dir / "events.log").write_text("2024-01-01 00:00:00,000 INFO bench: started\n")
        paths.append(run_dir)
    return paths


class PtyProcess:
    """A command in a pseudo-terminal whose output is drained by a thread."""

    def __init__(self, command: list[str]):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(ROWS)}
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True)
        os.close(slave)
        self.master = master
        self.first_axis: float | None = None
        self._tail = b""
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            if self.first_axis is None and AXIS_MARK in self._tail + chunk:
                self.first_axis = time.perf_counter()
            self._tail = chunk[-8:]

    def stop(self) -> None:
        os.write(self.master, b"q")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def start_dashboard(runs_dir: Path) -> tuple[PtyProcess, float, float]:
    """Start `rlo tui` and return it with the wall-clock seconds it took to draw its first
    chart and the CPU seconds it used until then (sampled every 10 ms, so an estimate)."""
    command = [sys.executable, "-m", "rlo_cli", "tui", "--runs-dir", str(runs_dir)]
    tui = PtyProcess(command)
    process = psutil.Process(tui.process.pid)
    deadline = time.perf_counter() + 60
    cpu = 0.0
    while tui.first_axis is None and time.perf_counter() < deadline:
        times = process.cpu_times()
        cpu = times.user + times.system
        time.sleep(0.01)
    if tui.first_axis is None:
        tui.stop()
        raise RuntimeError("rlo tui did not draw a chart within 60 s")
    return tui, tui.first_axis - tui.started, cpu


def measure_startups(runs_dir: Path, count: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(count):
        tui, wall, cpu = start_dashboard(runs_dir)
        tui.stop()
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus


def measure_idle(runs_dir: Path, idle_seconds: float) -> float:
    """Percent of one core that an idle `rlo tui` uses, all its threads together."""
    tui, _, _ = start_dashboard(runs_dir)
    try:
        time.sleep(3.0)  # let the first reads and renders settle
        process = psutil.Process(tui.process.pid)
        before = process.cpu_times()
        wall_start = time.perf_counter()
        time.sleep(idle_seconds)
        after = process.cpu_times()
        wall = time.perf_counter() - wall_start
        cpu = (after.user - before.user) + (after.system - before.system)
        return 100.0 * cpu / wall
    finally:
        tui.stop()


async def measure_latency(runs_dir: Path, run_dir: Path, appends: int) -> list[float]:
    from rlo_cli.tui import DashboardApp
    from rlo_cli.tui.widgets.chart import MetricChart

    app = DashboardApp(runs_dir, select=run_dir)
    latencies = []
    async with app.run_test(size=(COLUMNS, ROWS)) as pilot:
        chart = app.dashboard.query_one(MetricChart)

        def last_train_step() -> float | None:
            view = chart.view
            if view is None:
                return None
            lines = [line for line in view.lines if line.label == "train loss"]
            return lines[0].xs[-1] if lines else None

        while last_train_step() is None:
            await pilot.pause(0.01)
        step = int(last_train_step())
        for _ in range(appends):
            step += 1
            await pilot.pause(0.37)  # spread the appends over the refresh period
            record = {"time": time.time(), "step": step, "epoch": 10, "split": "train",
                      "loss": 0.1, "ce": 0.09, "acc": 0.95, "lr": 1e-3}
            started = time.perf_counter()
            with open(run_dir / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(record) + "\n")
            while last_train_step() != step:
                await pilot.pause(0.005)
            latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--appends", type=int, default=10)
    parser.add_argument("--starts", type=int, default=5, help="Startups to time.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rlo-bench-tui-") as folder:
        runs_dir = Path(folder) / "runs"
        started = time.perf_counter()
        paths = write_runs(runs_dir, args.runs, args.lines)
        print(f"wrote {args.runs} runs x {args.lines} metric lines in "
              f"{time.perf_counter() - started:.1f} s")
        print(f"machine: {platform.processor() or platform.machine()}, "
              f"{psutil.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}")

        # Python imports and the first file reads are cached by the OS after one start.
        start_dashboard(runs_dir)[0].stop()
        startups, cpus = measure_startups(runs_dir, args.starts)
        print(f"startup to first chart: median {statistics.median(startups):.2f} s, "
              f"max {max(startups):.2f} s over {len(startups)} starts (target < 2 s); "
              f"CPU time used until then: median {statistics.median(cpus):.2f} s")
        idle = measure_idle(runs_dir, args.idle_seconds)
        print(f"idle CPU over {args.idle_seconds:.0f} s: {idle:.2f}% of one core (target < 5%)")

        latencies = asyncio.run(measure_latency(runs_dir, paths[-1], args.appends))
        print(f"new line to chart: mean {statistics.mean(latencies):.3f} s, "
              f"max {max(latencies):.3f} s over {len(latencies)} appends (target < 1 s)")


if __name__ == "__main__":
    main()
