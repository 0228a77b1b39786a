"""System metrics of a training job: its CPU %, resident memory and (NVML where present) GPU load.

A daemon thread samples the job process every `interval` seconds; the run's DatabaseSink drains the
samples at each flush into the metrics store as `system/...` series whose step is the second since the
run started (not a training step). `system/step` records the training step at each sample, which maps
steps to elapsed time for the charts' relative-time axis. Reads /proc (Linux); pynvml is optional.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
KEYS = ("system/cpu_percent", "system/rss_mb", "system/gpu_util_percent", "system/gpu_memory_mb", "system/step")


def interval_from_env() -> float:
    """DISTILLERY_SYSTEM_METRICS_SECONDS (default 5; 0 turns sampling off)."""
    raw = os.environ.get("DISTILLERY_SYSTEM_METRICS_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        log.warning("DISTILLERY_SYSTEM_METRICS_SECONDS=%r is not a number; sampling every %s s", raw, DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL
    return max(0.0, value)


class ProcReader:
    """CPU seconds and RSS of one process from /proc/<pid>/stat and /proc/<pid>/status."""

    def __init__(self, pid: int):
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0  # kB -> MiB
        except (OSError, ValueError, IndexError):
            return None
        return None


class Nvml:
    """GPU utilisation and the memory this process uses on its GPU, via pynvml; absent without it or a GPU."""

    def __init__(self, pid: int, index: int = 0):
        self.pid = pid
        self.handle: Any = None
        try:
            import pynvml  # optional: not in requirements; present on GPU images that install it

            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.nvml = pynvml
        except Exception:  # no module, no driver, no device: no GPU series
            self.handle = None

    @property
    def present(self) -> bool:
        return self.handle is not None

    def sample(self) -> dict[str, float]:
        if self.handle is None:
            return {}
        try:
            util = self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu
            used = None
            for proc in self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle):
                if proc.pid == self.pid and proc.usedGpuMemory is not None:
                    used = proc.usedGpuMemory
            if used is None:  # inside a container the pids differ: the device's use is the next best thing
                used = self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used
            return {"system/gpu_util_percent": float(util), "system/gpu_memory_mb": used / 2**20}
        except Exception:
            log.debug("NVML sample failed", exc_info=True)
            return {}


def visible_gpu_index() -> int:
    """NVML counts every GPU of the machine; the job sees the first of CUDA_VISIBLE_DEVICES (when numeric)."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


class SystemSampler:
    """Samples `pid` every `interval` seconds on a daemon thread; `drain()` hands over the points so far.

    Points are {(key, second): value}; `second` counts from `offset` (a resumed run continues after the
    seconds an earlier attempt stored, so nothing collides). `step_of()` gives the run's training step.
    """

    def __init__(self, pid: int, interval: float, step_of: Callable[[], int], *, offset: int = 0,
                 clock: Callable[[], float] = time.monotonic, nvml: Nvml | None = None):
        self.proc = ProcReader(pid)
        self.interval = interval
        self.step_of = step_of
        self.offset = offset
        self.clock = clock
        self.nvml = nvml if nvml is not None else Nvml(pid, visible_gpu_index())
        self.points: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = clock()
        self._last: tuple[float, float] | None = None  # (wall, cpu seconds) of the previous sample

    def sample(self) -> dict[str, float]:
        """One sample now: the CPU % since the previous sample (none on the first), RSS, GPU, step."""
        now, cpu = self.clock(), self.proc.cpu_seconds()
        values: dict[str, float] = {}
        if cpu is not None:
            if self._last is not None and now > self._last[0]:
                values["system/cpu_percent"] = 100.0 * (cpu - self._last[1]) / (now - self._last[0])
            self._last = (now, cpu)
        rss = self.proc.rss_mb()
        if rss is not None:
            values["system/rss_mb"] = rss
        values.update(self.nvml.sample())
        values["system/step"] = float(self.step_of())
        second = self.offset + int(round(now - self._started))
        with self._lock:
            for key, value in values.items():
                self.points[(key, second)] = value
        return values

    def drain(self) -> dict[tuple[str, int], float]:
        with self._lock:
            points, self.points = self.points, {}
        return points

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # sampling must never take the run down
                log.debug("System sample failed", exc_info=True)

    def start(self) -> SystemSampler:
        self.sample()  # a first point at once (memory; CPU needs two)
        self._thread = threading.Thread(target=self._loop, name="system-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 1)


def start_for(experiment_id: int, sink: Any) -> SystemSampler | None:
    """A started sampler of this process feeding `sink`, continuing after earlier attempts' seconds; None if off."""
    from django.db.models import Max

    from webapp.metrics.models import MetricPoint

    interval = interval_from_env()
    if interval <= 0:
        return None
    last = MetricPoint.objects.filter(experiment_id=experiment_id, key="system/step").aggregate(m=Max("step"))["m"]
    offset = 0 if last is None else last + int(interval) + 1
    sampler = SystemSampler(os.getpid(), interval, lambda: sink.step, offset=offset)
    sink.sampler = sampler
    return sampler.start()
