"""Worker inventory: device probing without CUDA in the parent, registration and heartbeats."""

from __future__ import annotations

import sys
import types

import pytest

from webapp.gpuqueue.models import Worker
from workers import inventory


@pytest.fixture
def fake_nvml(monkeypatch):
    """NVML is the GPU boundary: a fake pynvml module reporting one 80 GiB GPU at 37 %."""
    module = types.ModuleType("pynvml")
    module.nvmlInit = lambda: None
    module.nvmlDeviceGetHandleByIndex = lambda index: f"gpu{index}"
    module.nvmlDeviceGetName = lambda handle: b"NVIDIA H100"
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(total=80 * 2**30, used=12 * 2**30)
    module.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=37)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return module


def test_a_worker_without_a_gpu_reports_cpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert inventory.probe_device() == {"device": "cpu", "cuda_index": None, "device_name": "cpu", "cuda_indices": []}


def test_a_gpu_worker_reports_its_device_through_nvml(monkeypatch, fake_nvml):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert inventory.probe_device() == {"device": "cuda", "cuda_index": 3, "device_name": "NVIDIA H100",
                                        "memory_total_mb": 81920, "memory_used_mb": 12288, "utilization": 37.0,
                                        "cuda_indices": [3]}


def test_a_worker_owning_several_gpus_lists_them_all(monkeypatch, fake_nvml):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert inventory.visible_cuda_indices() == [2, 3]
    assert inventory.probe_device()["cuda_index"] == 2 and inventory.probe_device()["cuda_indices"] == [2, 3]


def test_the_parent_never_initialises_cuda(monkeypatch, fake_nvml, db):
    import torch

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")

    def forbidden(*args, **kwargs):
        raise AssertionError("CUDA touched in the forking parent")

    monkeypatch.setattr(torch.cuda, "init", forbidden)
    monkeypatch.setattr(torch.cuda, "get_device_properties", forbidden)
    monkeypatch.setattr(torch.cuda, "is_available", forbidden)
    inventory.register("gpu0@host", ["default"])
    inventory.beat("gpu0@host")


def test_registration_and_heartbeats_update_the_worker_row(monkeypatch, fake_nvml, db):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    inventory.register("gpu1@host", ["default", "a100"])
    worker = Worker.objects.get(name="gpu1@host")
    assert worker.pools == ["default", "a100"] and worker.cuda_index == 1 and worker.device_name == "NVIDIA H100"
    assert worker.state(busy=False) == "idle" and worker.state(busy=True) == "busy"
    Worker.objects.filter(pk=worker.pk).update(heartbeat_at=worker.heartbeat_at.replace(year=2000))
    assert Worker.objects.get(pk=worker.pk).state(busy=False) == "offline"
    inventory.beat("gpu1@host")
    assert Worker.objects.get(pk=worker.pk).state(busy=False) == "idle"
