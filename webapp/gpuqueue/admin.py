from __future__ import annotations

from django.contrib import admin

from webapp.gpuqueue import actions
from webapp.gpuqueue.models import Pool, Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("name", "host", "device", "cuda_index", "mode", "heartbeat_at")

    def save_model(self, request, obj, form, change):
        """A mode changed here takes effect as on the queue board (activating wakes the worker's pools)."""
        super().save_model(request, obj, form, change)
        if change and "mode" in form.changed_data:
            actions.set_worker_mode(obj, obj.mode)


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ("name", "paused")

    def save_model(self, request, obj, form, change):
        """Pausing or resuming here is the queue board's service (resuming wakes the pool's workers)."""
        super().save_model(request, obj, form, change)
        if "paused" in form.changed_data:
            actions.pause_pool(obj.name, obj.paused)
