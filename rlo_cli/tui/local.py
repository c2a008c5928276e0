"""Live GPU, CPU and memory figures of the machine the dashboard runs on."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import psutil

from rlo_core.runs.system import NvmlReader


@dataclass(frozen=True)
class LocalSample:
    """One reading of this machine. `gpu_reason` explains why `gpus` is empty."""

    host: str
    cpu_pct: float
    mem_used_mb: float
    mem_total_mb: float
    gpus: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    gpu_reason: str = ""


class LocalSampler:
    """Samples NVML and psutil. NVML starts on the first `sample()`, in the caller's thread,
    so a slow driver does not delay the first screen."""

    def __init__(self, nvml: NvmlReader | None = None):
        self._nvml = nvml
        self._host = socket.gethostname()
        psutil.cpu_percent(interval=None)  # the first call only primes the counter

    def sample(self) -> LocalSample:
        if self._nvml is None:
            self._nvml = NvmlReader()
        memory = psutil.virtual_memory()
        gpus = tuple(self._nvml.sample()) if self._nvml.available else ()
        return LocalSample(
            host=self._host,
            cpu_pct=psutil.cpu_percent(interval=None),
            mem_used_mb=(memory.total - memory.available) / 2**20,
            mem_total_mb=memory.total / 2**20,
            gpus=gpus,
            gpu_reason="" if self._nvml.available else self._nvml.reason,
        )
