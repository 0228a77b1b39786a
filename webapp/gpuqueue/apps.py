from __future__ import annotations

from django.apps import AppConfig


class GpuQueueConfig(AppConfig):
    name = "webapp.gpuqueue"
    label = "gpuqueue"
    verbose_name = "GPU queue"
