"""Issue #18 part 3: the worker samples its job process (CPU %, RSS, NVML GPU) into system/... series."""

from __future__ import annotations

import os
import sys
import types

import pytest

from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.metrics.models import MetricPoint
from workers import sysmetrics
from workers.tasks import execute


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class NoGpu:
    present = False

    def sample(self):
        return {}


def test_proc_reader_reads_this_process():
    reader = sysmetrics.ProcReader(os.getpid())
    before = reader.cpu_seconds()
    sum(i * i for i in range(2_000_000))  # burn some CPU
    assert reader.cpu_seconds() > before
    assert 1 < reader.rss_mb() < 1e6
    gone = sysmetrics.ProcReader(2**22 + 12345)  # beyond pid_max: no such process
    assert gone.cpu_seconds() is None and gone.rss_mb() is None


def test_samples_are_keyed_by_second_with_the_training_step(monkeypatch):
    clock, step = Clock(), {"now": 0}
    sampler = sysmetrics.SystemSampler(os.getpid(), 5.0, lambda: step["now"], offset=40, clock=clock, nvml=NoGpu())
    cpu = iter([10.0, 12.5])
    monkeypatch.setattr(sampler.proc, "cpu_seconds", lambda: next(cpu))
    monkeypatch.setattr(sampler.proc, "rss_mb", lambda: 512.0)
    first = sampler.sample()
    assert "system/cpu_percent" not in first  # a rate needs two samples
    clock.now, step["now"] = 105.0, 37
    second = sampler.sample()
    assert second["system/cpu_percent"] == pytest.approx(50.0)  # 2.5 CPU seconds in 5 s
    points = sampler.drain()
    assert points == {("system/rss_mb", 40): 512.0, ("system/step", 40): 0.0, ("system/cpu_percent", 45): 50.0,
                      ("system/rss_mb", 45): 512.0, ("system/step", 45): 37.0}
    assert sampler.drain() == {}


def test_nvml_is_absent_without_pynvml():
    assert "pynvml" not in sys.modules or sys.modules["pynvml"] is None
    gpu = sysmetrics.Nvml(os.getpid())
    assert not gpu.present and gpu.sample() == {}


def test_nvml_gives_utilisation_and_this_process_memory(monkeypatch):
    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetHandleByIndex = lambda index: ("gpu", index)
    fake.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=87)
    fake.nvmlDeviceGetComputeRunningProcesses = lambda handle: [
        types.SimpleNamespace(pid=1, usedGpuMemory=2**30), types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=3 * 2**29)]
    fake.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=9 * 2**30)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,4")
    gpu = sysmetrics.Nvml(os.getpid(), sysmetrics.visible_gpu_index())
    assert gpu.present and gpu.handle == ("gpu", 3)
    assert gpu.sample() == {"system/gpu_util_percent": 87.0, "system/gpu_memory_mb": 1536.0}


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DISTILLERY_SYSTEM_METRICS_SECONDS", "0.5")
    assert sysmetrics.interval_from_env() == 0.5
    monkeypatch.setenv("DISTILLERY_SYSTEM_METRICS_SECONDS", "soon")
    assert sysmetrics.interval_from_env() == sysmetrics.DEFAULT_INTERVAL


def test_a_run_stores_system_series_and_its_full_log(monkeypatch, transactional_db, make_experiment, settings,
                                                     tmp_path):
    settings.ARTIFACT_ROOT = tmp_path
    monkeypatch.setenv("DISTILLERY_FAKE_DISTILLER", "1")
    monkeypatch.setenv("DISTILLERY_SYSTEM_METRICS_SECONDS", "0.2")
    settings.LEASE_SECONDS = 5
    exp = make_experiment("fake", config={"fake": {"steps": 12, "sleep": 0.1}})
    assert queue.claim_next("default", "w1", "token-1") == exp.pk
    execute(exp.pk, "token-1")
    exp.refresh_from_db()
    assert exp.status == Experiment.Status.SUCCEEDED
    keys = set(MetricPoint.objects.filter(experiment=exp, key__startswith="system/").values_list("key", flat=True))
    assert {"system/rss_mb", "system/step", "system/cpu_percent"} <= keys
    steps = list(MetricPoint.objects.filter(experiment=exp, key="system/step").order_by("step")
                 .values_list("value", flat=True))
    assert steps == sorted(steps) and steps[-1] > 0  # the training step at each sample, never going back
    assert exp.latest["system/rss_mb"] > 1
    log = settings.ARTIFACT_ROOT / "experiments" / str(exp.pk) / "run.log"
    assert f"Experiment {exp.pk}: attempt 1 on w1" in log.read_text()
