"""Command lines for worker and beat processes (used by `manage.py runall` and compose)."""

from __future__ import annotations

import sys

from django.conf import settings


def worker_argv(pools: list[str], name: str = "cpu0") -> list[str]:
    """One worker process per GPU: concurrency 1, prefetch 1, a fresh child per job.

    The parent never touches CUDA (tasks import torch inside the child), and
    max-tasks-per-child=1 (settings.CELERY_WORKER_MAX_TASKS_PER_CHILD, from DISTILLERY_JOBS_PER_CHILD)
    hands GPU memory back after every run.
    """
    queues = [settings.CELERY_TASK_DEFAULT_QUEUE] + [f"{settings.CELERY_TASK_DEFAULT_QUEUE}.{p}" for p in pools]
    return [
        sys.executable, "-m", "celery", "-A", "workers", "worker",
        "--queues", ",".join(queues),
        "--concurrency", "1", "--prefetch-multiplier", "1",
        "--pool", "prefork", "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip",
        "--without-mingle",
    ]


def beat_argv() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO",
            "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME]
