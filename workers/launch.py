"""Command lines for the run workers, the housekeeping worker and beat (used by `manage.py runall` and compose)."""

from __future__ import annotations

import sys

from django.conf import settings


def worker_argv(pools: list[str], name: str = "cpu0") -> list[str]:
    """One worker process per GPU (or one per host owning several: one job slot per GPU), prefetch 1, a fresh child per job.

    The parent never touches CUDA (tasks import torch inside the child), and
    max-tasks-per-child=1 (settings.CELERY_WORKER_MAX_TASKS_PER_CHILD, from DISTILLERY_JOBS_PER_CHILD)
    hands GPU memory back after every run.
    """
    from workers.inventory import visible_cuda_indices

    queues = [settings.CELERY_TASK_DEFAULT_QUEUE] + [f"{settings.CELERY_TASK_DEFAULT_QUEUE}.{p}" for p in pools]
    return [
        sys.executable, "-m", "celery", "-A", "workers", "worker",
        "--queues", ",".join(queues),
        "--concurrency", str(max(1, len(visible_cuda_indices()))), "--prefetch-multiplier", "1",
        "--pool", "prefork", "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip",
        "--without-mingle",
    ]


def housekeeping_argv(name: str = "housekeeping") -> list[str]:
    """The beat task's own consumer: one process running tasks inline (solo pool), nothing else.

    Run workers never consume settings.HOUSEKEEPING_QUEUE, so housekeeping runs within seconds
    even while every GPU holds a run for hours. Housekeeping is short and uses no GPU: no child
    process, and so no max-tasks-per-child. It registers no Worker row (it serves no pool).
    """
    return [
        sys.executable, "-m", "celery", "-A", "workers", "worker",
        "--queues", settings.HOUSEKEEPING_QUEUE, "--pool", "solo", "--concurrency", "1",
        "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ]


def beat_argv(schedule: str | None = None) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO",
            "--schedule", schedule or settings.CELERY_BEAT_SCHEDULE_FILENAME]
