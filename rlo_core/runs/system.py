"""Background sampling of GPU (NVML) and process/host (psutil) metrics into system.jsonl."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from rlo_core.runs.metrics import MetricsWriter

log = logging.getLogger(__name__)


class NvmlReader:
    """Per-GPU utilization, memory, temperature and power through nvidia-ml-py.

    When NVML or a GPU is missing, `available` is False and `reason` contains the cause.
    """

    def __init__(self) -> None:
        self.available = False
        self.reason = ""
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nvml = pynvml
            self.available = count > 0
            self.reason = "" if count else "NVML reports no GPU on this host"
        except ImportError:
            self.reason = "nvidia-ml-py is not installed"
        except Exception as error:  # pynvml raises NVMLError subclasses for a missing driver
            self.reason = f"NVML is unavailable ({error}); no NVIDIA driver on this host?"

    def sample(self) -> list[dict[str, Any]]:
        if not self.available:
            return []
        nvml, gpus = self._nvml, []
        for index, handle in enumerate(self._handles):
            gpu: dict[str, Any] = {"index": index}
            try:
                gpu["name"] = nvml.nvmlDeviceGetName(handle)
                if isinstance(gpu["name"], bytes):
                    gpu["name"] = gpu["name"].decode()
                gpu["util_pct"] = nvml.nvmlDeviceGetUtilizationRates(handle).gpu
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                gpu["mem_used_mb"] = memory.used / 2**20
                gpu["mem_total_mb"] = memory.total / 2**20
                gpu["temp_c"] = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
                gpu["power_w"] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
            except Exception as error:  # a single unsupported query must not stop sampling
                gpu.setdefault("error", str(error))
            gpus.append(gpu)
        return gpus


def sample_host(process: psutil.Process) -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "cpu_pct": process.cpu_percent(interval=None),
        "rss_mb": process.memory_info().rss / 2**20,
        "host_mem_used_mb": (memory.total - memory.available) / 2**20,
        "host_mem_total_mb": memory.total / 2**20,
        "host_cpu_pct": psutil.cpu_percent(interval=None),
    }


class SystemMonitor(threading.Thread):
    """Daemon thread that appends one record to `path` every `interval` seconds."""

    def __init__(self, path: Path, interval: float = 5.0):
        super().__init__(name="rlo-system-monitor", daemon=True)
        self.interval = interval
        self._writer = MetricsWriter(path)
        self._stop_event = threading.Event()
        self._process = psutil.Process(os.getpid())
        self._nvml = NvmlReader()
        if not self._nvml.available:
            log.info("GPU metrics off: %s. Only CPU and memory are recorded.", self._nvml.reason)

    def run(self) -> None:
        self._process.cpu_percent(interval=None)  # the first call only primes the counter
        while not self._stop_event.wait(self.interval):
            self.sample_once()

    def sample_once(self) -> None:
        record: dict[str, Any] = {"time": time.time(), **sample_host(self._process)}
        gpus = self._nvml.sample()
        if gpus:
            record["gpus"] = gpus
        try:
            self._writer.write(record)
        except (OSError, ValueError) as error:  # the run directory was removed or closed
            log.warning("Could not write system metrics: %s", error)
            self._stop_event.set()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=self.interval + 1)
        self._writer.close()
