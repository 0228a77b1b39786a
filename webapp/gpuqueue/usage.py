"""Live utilisation of the workers, from the system/... samples the runs they hold store (workers/sysmetrics.py).

The numbers are the job process's: CPU % (100 = one core), resident memory, and NVML GPU load and memory
where the worker has it. A worker without a run has no job process, so it shows none.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from webapp.experiments.views_json import finite
from webapp.gpuqueue.board import worker_rows

FIELDS = {"cpu_percent": "system/cpu_percent", "rss_mb": "system/rss_mb",
          "gpu_util_percent": "system/gpu_util_percent", "gpu_memory_mb": "system/gpu_memory_mb"}


def usage_of(experiment) -> dict[str, Any] | None:
    """{"cpu_percent", "rss_mb", "gpu_util_percent", "gpu_memory_mb"} (None where not sampled), or None."""
    latest = experiment.latest if experiment is not None and isinstance(experiment.latest, dict) else {}
    values = {name: finite(latest.get(key)) for name, key in FIELDS.items()}
    return values if any(v is not None for v in values.values()) else None


def worker_usage(runs) -> dict[str, Any] | None:
    """A worker's job processes together (one per GPU set it booked): CPU, RAM and GPU memory summed,
    GPU utilisation the highest; None when none was sampled."""
    each = [u for u in map(usage_of, runs) if u]
    if not each:
        return None

    def combine(name: str, how=sum):
        values = [u[name] for u in each if u[name] is not None]
        return how(values) if values else None

    return {"cpu_percent": combine("cpu_percent"), "rss_mb": combine("rss_mb"),
            "gpu_util_percent": combine("gpu_util_percent", max), "gpu_memory_mb": combine("gpu_memory_mb")}


def usage_text(usage: dict[str, Any] | None) -> str:
    if not usage:
        return ""
    parts = []
    if usage["cpu_percent"] is not None:
        parts.append(f"CPU {usage['cpu_percent']:.0f} %")
    if usage["rss_mb"] is not None:
        parts.append(f"RAM {usage['rss_mb']:,.0f} MiB")
    if usage["gpu_util_percent"] is not None:
        parts.append(f"GPU {usage['gpu_util_percent']:.0f} %")
    if usage["gpu_memory_mb"] is not None:
        parts.append(f"GPU mem {usage['gpu_memory_mb']:,.0f} MiB")
    return " · ".join(parts)


@login_required
@require_GET
def workers_usage(request):
    """{"workers": {worker id: {"state", "usage": {...} or null, "text"}}}: polled by the Workers & GPUs page.

    Machine load only: which experiment a worker runs is not part of the answer (another team's may be).
    """
    answer = {}
    for worker, state, runs in worker_rows():
        usage = worker_usage(runs)
        answer[str(worker.pk)] = {"state": state, "usage": usage, "text": usage_text(usage)}
    return JsonResponse({"workers": answer})
