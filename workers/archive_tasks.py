"""Celery tasks on the housekeeping queue: unpack and inspect an uploaded archive; count a checkpoint's parameters."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

from celery import shared_task


# Acked late and requeued when its process dies, so a lost unpack is seen again and FAILED (archive_jobs).
@shared_task(bind=True, name="workers.archive_tasks.unpack_checkpoint", acks_late=True, reject_on_worker_lost=True)
def unpack_checkpoint(self, checkpoint_id: int) -> str:
    """Turn an UNPACKING checkpoint into READY or FAILED; a duplicate message is a no-op."""
    from webapp.registry import archive_jobs

    with _stop_on_sigterm(archive_jobs.Interrupted):
        return archive_jobs.unpack_stored(checkpoint_id, self.request.id or "")


@shared_task(name="workers.archive_tasks.describe_checkpoint")
def describe_checkpoint(checkpoint_id: int) -> str:
    """Count a path-registered checkpoint's parameters (a meta-device build the web request skipped)."""
    from webapp.registry import archive_jobs

    return archive_jobs.describe_stored(checkpoint_id)


@contextmanager
def _stop_on_sigterm(exception: type[Exception]):
    """Turn SIGTERM (a worker's warm shutdown forwards it to its jobs) into `exception`, so the task cleans up.

    Without it the child dies mid-unpack and leaves the row UNPACKING and a partial directory.
    Signal handlers belong to the main thread; elsewhere (an eager call in a web thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        raise exception("The worker was stopped while unpacking the archive; upload it again.")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if received:  # the process was asked to stop: hand the signal on (a solo worker then shuts down)
            os.kill(os.getpid(), signal.SIGTERM)
