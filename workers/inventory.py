"""Each worker registers itself and its device, and heartbeats, so the queue pages can list them.

The forking parent never initialises CUDA: it learns about its GPU through NVML
(nvidia-ml-py, optional), which opens no CUDA context. The job's child process, which may
use CUDA, adds what torch reports. Database writes in the parent happen only on the
heartbeat thread, so no connection is inherited by the children it forks.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Any

from celery import signals
from django.conf import settings
from django.db import connection
from django.utils import timezone

log = logging.getLogger(__name__)
_state: dict[str, Any] = {}


def visible_cuda_index() -> int | None:
    """The physical GPU index this worker owns (first of CUDA_VISIBLE_DEVICES), None for CPU."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    first = value.split(",")[0].strip()
    return int(first) if first.isdigit() else None


def visible_cuda_indices() -> list[int]:
    """Every physical GPU index this worker owns (CUDA_VISIBLE_DEVICES), [] for a CPU worker.

    The one place the queue learns a worker's GPUs (claims book them, webapp/gpuqueue/queue.py): tests fake GPUs here.
    """
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return []
    return [int(part) for part in (p.strip() for p in value.split(",")) if part.isdigit()]


def nvml_stats(index: int) -> dict[str, Any] | None:
    """Name, memory and utilisation of GPU `index` from NVML; None when NVML is unavailable."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        return {"device_name": name.decode() if isinstance(name, bytes) else str(name),
                "memory_total_mb": int(memory.total // 2**20), "memory_used_mb": int(memory.used // 2**20),
                "utilization": float(util.gpu)}
    except Exception:  # pynvml.NVMLError and friends: no driver, no such device
        log.warning("NVML could not read GPU %s", index, exc_info=True)
        return None


def probe_device() -> dict[str, Any]:
    """What the parent can learn about its device without touching CUDA."""
    index = visible_cuda_index()
    if index is None:
        return {"device": "cpu", "cuda_index": None, "device_name": "cpu", "cuda_indices": []}
    return {"device": "cuda", "cuda_index": index, "cuda_indices": visible_cuda_indices(),
            **(nvml_stats(index) or {})}


def register(name: str, pools: list[str]) -> None:
    from webapp.gpuqueue.models import Worker

    now = timezone.now()
    Worker.objects.update_or_create(name=name, defaults={
        "host": socket.gethostname(), "pid": os.getpid(), "pools": pools, "started_at": now,
        "heartbeat_at": now, "stopped_at": None, **probe_device()})


def beat(name: str) -> None:
    from webapp.gpuqueue.models import Worker

    fields: dict[str, Any] = {"heartbeat_at": timezone.now(), "stopped_at": None}
    index = visible_cuda_index()
    if index is not None:
        fields.update(nvml_stats(index) or {})
    Worker.objects.filter(name=name).update(**fields)


def _heartbeat_loop(name: str, pools: list[str], stop: threading.Event) -> None:
    interval = max(1.0, settings.LEASE_SECONDS / 4)
    registered = False
    while True:
        try:
            if not registered:
                register(name, pools)
                registered = True
            else:
                beat(name)
        except Exception:
            log.warning("Worker heartbeat failed; retrying", exc_info=True)
            connection.close()
        if stop.wait(interval):
            break
    try:
        from webapp.gpuqueue.models import Worker

        Worker.objects.filter(name=name).update(stopped_at=timezone.now())
    except Exception:
        log.warning("Could not mark worker %s stopped", name, exc_info=True)
    finally:
        connection.close()


def pools_of(consumer) -> list[str]:
    prefix = settings.CELERY_TASK_DEFAULT_QUEUE + "."
    names = consumer.app.amqp.queues.consume_from or {}
    return sorted(q[len(prefix):] for q in names if q.startswith(prefix))


@signals.worker_ready.connect
def on_worker_ready(sender=None, **kwargs) -> None:
    if not pools_of(sender):  # the housekeeping worker serves no pool: it is not a GPU worker to list
        return
    stop = threading.Event()
    thread = threading.Thread(target=_heartbeat_loop, args=(sender.hostname, pools_of(sender), stop),
                              name="worker-heartbeat", daemon=True)
    _state.update(name=sender.hostname, stop=stop, thread=thread)
    thread.start()


@signals.worker_shutdown.connect
def on_worker_shutdown(sender=None, **kwargs) -> None:
    if "stop" in _state:
        _state["stop"].set()
        _state["thread"].join(timeout=10)


def note_job_device(name: str) -> None:
    """In the job's child: record what torch says about the GPU (CUDA is allowed here)."""
    if not name or visible_cuda_index() is None:
        return
    try:
        import torch

        if not torch.cuda.is_available():
            return
        props = torch.cuda.get_device_properties(0)
        from webapp.gpuqueue.models import Worker

        Worker.objects.filter(name=name).update(device_name=props.name, memory_total_mb=props.total_memory // 2**20)
    except Exception:
        log.warning("Could not read the GPU through torch", exc_info=True)


@signals.worker_shutting_down.connect
def forward_stop_to_jobs(sig=None, how=None, exitcode=None, **kwargs) -> None:
    """On a warm shutdown (SIGTERM to the worker, e.g. `docker stop`), ask the running job to stop.

    Celery would wait for the job to finish (hours); the job's SIGTERM handler instead saves,
    re-queues it and returns, so another worker resumes it at once.
    """
    if how != "Warm":
        return
    import billiard.process

    for child in billiard.process.active_children():
        try:
            os.kill(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
