"""The last resort for a run that ignores its cancel flag: kill its process through Celery."""

from __future__ import annotations

import logging

from django.utils import timezone

log = logging.getLogger(__name__)


def kill_hung_cancels(now=None) -> list[int]:
    """Kill the job process of every hung cancel (queue.hung_cancels) and CANCEL its run.

    `revoke(terminate=True)` kills the job's child process; the worker itself lives on and takes the
    next job.
    """
    from webapp.gpuqueue import queue
    from workers.celery import app

    now = now or timezone.now()
    killed = []
    for pk, task_id in queue.hung_cancels(now):
        if task_id:
            try:
                app.control.revoke(task_id, terminate=True, signal="SIGKILL")
            except Exception:
                log.exception("Could not revoke task %s of experiment %s", task_id, pk)
        if queue.end_killed_cancel(pk, now):
            killed.append(pk)
    return killed
