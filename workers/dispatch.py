"""The one module the web app sends work to workers through: wake-ups and housekeeping jobs.

Postgres holds the queue; a message only says "look for work in pool P". Tasks are named, not
imported (`task`), so this module, which the web app and the queue import, does not import the task
modules that import them back (tests/test_import_graph.py).
"""

from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def pool_queue(pool: str) -> str:
    """The broker queue that workers of `pool` listen on."""
    from django.conf import settings

    return f"{settings.CELERY_TASK_DEFAULT_QUEUE}.{pool}"


def task(name: str):
    """The registered Celery task `name` (its module is imported by Celery's autodiscovery, not by us)."""
    from workers.celery import app

    if name not in app.tasks:
        app.loader.import_default_modules()  # runs the autodiscovery of workers/celery.py
    return app.tasks[name]


def send_housekeeping(name: str, *args: object) -> None:
    """Queue the housekeeping task `name` (unpacking an upload, counting a checkpoint's parameters) now.

    Raises what the broker raises: the caller decides whether that fails the request or is logged.
    """
    task(name).apply_async(args=list(args), queue=housekeeping_queue())


def wake_workers(pool: str = "default") -> None:
    """After the current transaction commits, send one wake-up to `pool`'s workers.

    A lost or duplicated message is harmless: the beat task sends wake-ups while work is
    queued, and a worker that finds nothing to claim simply returns.
    """

    def send() -> None:
        try:
            task("workers.tasks.run_next").apply_async(args=[pool], queue=pool_queue(pool))
        except Exception:  # the broker being down must not fail the web request
            log.exception("Could not send a wake-up to pool %s; the beat task will retry", pool)

    transaction.on_commit(send)


def housekeeping_queue() -> str:
    """The queue of short jobs (the beat's housekeeping, unpacking uploads) that must not wait behind a run.

    The housekeeping worker consumes it; the run workers, one job at a time for hours, never do.
    settings.HOUSEKEEPING_QUEUE names it where the housekeeping worker is configured; the same name
    otherwise, outside the "<prefix>.<pool>" space so that no pool can collide with it.
    """
    from django.conf import settings

    return getattr(settings, "HOUSEKEEPING_QUEUE", f"{settings.CELERY_TASK_DEFAULT_QUEUE}-housekeeping")
