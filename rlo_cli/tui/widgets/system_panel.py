"""The system panel: CPU, memory and per-GPU figures of the selected run and of this machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from rlo_cli.tui.format import megabytes_text, sparkline, unit_text, value_text
from rlo_cli.tui.local import LocalSample

LABEL_STYLE = "bold"


@dataclass(frozen=True)
class SystemView:
    """The selected run's recent system.jsonl samples and recent samples of this machine."""

    run_name: str | None = None
    samples: tuple[dict[str, Any], ...] = ()
    local: tuple[LocalSample, ...] = ()


def _percent(value: Any) -> str:
    text = value_text(value)
    return "   -" if text == "-" else f"{float(value):3.0f}%"


def _gpu_lines(gpu: dict[str, Any], util_history: Sequence[float | None], spark: int) -> list[Text]:
    head = Text(f" GPU{gpu.get('index', '?')}", style=LABEL_STYLE, no_wrap=True,
                overflow="ellipsis")
    if "error" in gpu and "util_pct" not in gpu:
        head.append(f"query failed: {gpu['error']}", style="red")
        return [head]
    head.append(_percent(gpu.get("util_pct")))
    head.append(" " + sparkline(util_history, spark, 0.0, 100.0), style="green")
    detail = Text("     ", no_wrap=True, overflow="ellipsis")
    detail.append(megabytes_text(gpu.get("mem_used_mb"), gpu.get("mem_total_mb")))
    detail.append(unit_text(gpu.get("temp_c"), "°C"))
    detail.append(unit_text(gpu.get("power_w"), " W"))
    if gpu.get("name"):
        detail.append(f" {str(gpu['name']).removeprefix('NVIDIA ')}", style="dim")
    return [head, detail]


def _cpu_lines(cpu: list[float | None], used: Any, total: Any, spark: int,
               rss: Any = None) -> list[Text]:
    cpu_line = Text(" CPU ", style=LABEL_STYLE, no_wrap=True, overflow="ellipsis")
    cpu_line.append(_percent(cpu[-1] if cpu else None))
    cpu_line.append(" " + sparkline(cpu, spark, 0.0, None), style="cyan")
    memory = Text(" Mem ", style=LABEL_STYLE, no_wrap=True, overflow="ellipsis")
    memory.append(megabytes_text(used, total))
    if rss is not None:
        memory.append(f" RSS {megabytes_text(rss)}", style="dim")
    return [cpu_line, memory]


def run_lines(view: SystemView, spark: int) -> list[Text]:
    lines = [Text("Run ", style="bold underline", no_wrap=True, overflow="ellipsis")
             .append(view.run_name or "-", style="bold")]
    if not view.samples:
        lines.append(Text(" No samples in system.jsonl yet.", style="dim"))
        return lines
    last = view.samples[-1]
    cpu = [sample.get("cpu_pct") for sample in view.samples]
    lines += _cpu_lines(cpu, last.get("host_mem_used_mb"), last.get("host_mem_total_mb"), spark,
                        rss=last.get("rss_mb"))
    gpus = gpu_list(last)
    for gpu in gpus:
        history = [_gpu_util(sample, gpu.get("index")) for sample in view.samples]
        lines += _gpu_lines(gpu, history, spark)
    if not gpus:
        lines.append(Text(" No GPU samples: the run recorded CPU figures only.", style="dim"))
    return lines


def gpu_list(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the `gpus` entries of a system sample, skipping anything that is not a GPU
    record."""
    gpus = sample.get("gpus")
    if not isinstance(gpus, list):
        return []
    return [gpu for gpu in gpus if isinstance(gpu, dict)]


def _gpu_util(sample: dict[str, Any], index: Any) -> float | None:
    for gpu in gpu_list(sample):
        if gpu.get("index") == index:
            return gpu.get("util_pct")
    return None


def local_lines(view: SystemView, spark: int) -> list[Text]:
    if not view.local:
        return [Text("This machine", style="bold underline"), Text(" Sampling...", style="dim")]
    last = view.local[-1]
    lines = [Text("This machine ", style="bold underline", no_wrap=True, overflow="ellipsis")
             .append(last.host, style="bold")]
    cpu = [sample.cpu_pct for sample in view.local]
    lines += _cpu_lines(cpu, last.mem_used_mb, last.mem_total_mb, spark)
    for gpu in last.gpus:
        history = [_gpu_util({"gpus": sample.gpus}, gpu.get("index")) for sample in view.local]
        lines += _gpu_lines(gpu, history, spark)
    if not last.gpus:
        lines.append(Text(f" No GPU data: {last.gpu_reason}", style="yellow"))
    return lines


class SystemPanel(Static):
    """Renders a SystemView; sparklines take the width left after the numbers."""

    view: reactive[SystemView] = reactive(SystemView, layout=True)

    def render(self) -> Group:
        spark = max(4, min(30, self.size.width - 13))
        return Group(*run_lines(self.view, spark), *local_lines(self.view, spark))
