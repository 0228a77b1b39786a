"""The Celery app, configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("distillery")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])
app.autodiscover_tasks(["workers"], related_name="archive_tasks")  # unpacking uploads (housekeeping queue)
app.autodiscover_tasks(["workers"], related_name="notify_tasks")  # notifications (housekeeping queue)

import workers.inventory  # noqa: E402,F401  (worker_ready/worker_shutdown: registration and heartbeats)
from workers.pool import install as _install_quick_recycle  # noqa: E402

_install_quick_recycle()
