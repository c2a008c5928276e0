"""The results table of a quantization run: rows, Rich rendering and Markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class ResultRow:
    """One evaluated model: the full-precision baseline, a fresh quantization or a loaded one."""

    method: str  # "none" for the baseline, else nearest, gptq, ldlq or ldlqRG
    wbits: int
    transform: str  # "-" without incoherence processing
    source: str  # "baseline", "quantized", "loaded" or "loaded+adapters"
    perplexity: dict[str, float] = field(default_factory=dict)  # by evaluation data set
    proxy_loss: Optional[float] = None  # tr((W-Q) H (W-Q)^T) summed over layers
    seconds: Optional[float] = None  # quantization wall time

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "wbits": self.wbits, "transform": self.transform,
                "source": self.source, "ppl": dict(self.perplexity),
                "proxy_loss": self.proxy_loss, "time_s": self.seconds}


def _number(value: Optional[float], digits: int = 4) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def table_columns(datasets: list[str]) -> list[str]:
    return ["method", "bits", "transform", "proxy loss", *[f"ppl {name}" for name in datasets],
            "time (s)"]


def table_cells(row: ResultRow, datasets: list[str]) -> list[str]:
    return [row.method, str(row.wbits), row.transform, _number(row.proxy_loss),
            *[_number(row.perplexity.get(name), 3) for name in datasets],
            "-" if row.seconds is None else f"{row.seconds:.1f}"]


def markdown_table(rows: list[ResultRow], datasets: list[str]) -> str:
    columns = table_columns(datasets)
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(table_cells(row, datasets)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def rich_table(rows: list[ResultRow], datasets: list[str], title: str = ""):
    from rich.table import Table

    table = Table(title=title or None)
    for index, column in enumerate(table_columns(datasets)):
        table.add_column(column, justify="left" if index < 3 else "right")
    for row in rows:
        table.add_row(*table_cells(row, datasets))
    return table
