from __future__ import annotations

from django.contrib import admin

from webapp.gpuqueue.models import Pool, Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("name", "host", "device", "cuda_index", "mode", "heartbeat_at")


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ("name", "paused")
